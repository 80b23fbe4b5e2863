// `cellseg synth`: a deterministic synthetic dataset in the exact Sartorius layout (train.csv,
// train/<id>.png, test/<id>.png, sample_submission.csv). Cell types cycle over images (one type per
// image, as in the real data); training annotations may overlap a little (train masks overlap in
// the real data, submissions cannot), and shsy5y cells are packed into touching clusters.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../../../runtime/errors';
import { Rng } from '../../../runtime/rng';
import { CELL_TYPES, type CellType } from '../cell-types';
import { cropArea, cropToRuns, type MaskCrop } from '../../../structures/mask-crop';
import { trainCsvHeader, trainCsvRows, type TrainImage } from '../train-csv';
import { encodePngGray } from '../../io/png';
import { TYPE_STATS, randomShape, rasterizeShape, shapeRadius } from './cell-shapes';
import { renderImage, type Neurite, type RenderCell } from './render';
import { asWriteError } from '../../../runtime/durable-write';
import { isProcessAlive } from '../../io/process-alive';
import { restoreInterruptedOutputDir } from '../../io/fresh-output-dir';

export interface SynthOptions {
  seed: number;
  trainImages: number;
  testImages: number;
  width: number;
  height: number;
  /** Fraction of cells allowed to overlap a neighbour (by at most 12 % of their area). */
  overlapFraction?: number;
}

export const SYNTH_DEFAULTS: SynthOptions = { seed: 42, trainImages: 6, testImages: 3, width: 704, height: 520 };

export interface SynthImage {
  meta: TrainImage;
  pixels: Uint8Array;
  masks: MaskCrop[];
}

function hexId(rng: Rng): string {
  let s = '';
  for (let i = 0; i < 12; i++) s += '0123456789abcdef'[rng.int(0, 16)];
  return s;
}

const SAMPLE_TAG: Record<CellType, string> = { shsy5y: 'diff', astro: 'hippo', cort: 'cereb' };

function overlapPixels(occ: Uint8Array, width: number, m: MaskCrop): number {
  let n = 0;
  for (let y = 0; y < m.height; y++) {
    const row = (m.y0 + y) * width + m.x0;
    for (let x = 0; x < m.width; x++) if (m.data[y * m.width + x] && occ[row + x]) n++;
  }
  return n;
}

function occupy(occ: Uint8Array, width: number, m: MaskCrop): void {
  for (let y = 0; y < m.height; y++) {
    const row = (m.y0 + y) * width + m.x0;
    for (let x = 0; x < m.width; x++) if (m.data[y * m.width + x]) occ[row + x] = 1;
  }
}

/** One image's cells and pixels. */
export function synthImage(rng: Rng, type: CellType, width: number, height: number, overlapFraction: number): { pixels: Uint8Array; masks: MaskCrop[] } {
  const st = TYPE_STATS[type];
  const scale = (width * height) / (704 * 520);
  const target = Math.max(3, Math.round(rng.normal(st.cellsPerImage, st.cellsStd) * scale));
  const occ = new Uint8Array(width * height);
  const masks: MaskCrop[] = [];
  const centres: { x: number; y: number; r: number }[] = [];
  for (let c = 0; c < target; c++) {
    const mayOverlap = rng.next() < overlapFraction;
    for (let attempt = 0; attempt < 25; attempt++) {
      let cx = rng.uniform(0, width);
      let cy = rng.uniform(0, height);
      const probe = randomShape(rng, type, 0, 0);
      const r = shapeRadius(probe);
      if (type === 'shsy5y' && centres.length > 0 && rng.next() < 0.7) {
        const nb = centres[rng.int(0, centres.length)]!;
        const dir = rng.uniform(0, 2 * Math.PI);
        const d = (nb.r + r) * rng.uniform(0.55, 0.85);
        cx = nb.x + Math.cos(dir) * d;
        cy = nb.y + Math.sin(dir) * d;
      }
      // cheap rejection before rasterising: the centre must be free
      const ci = Math.floor(cy) * width + Math.floor(cx);
      if (cx < 0 || cy < 0 || cx >= width || cy >= height || (occ[ci] && !mayOverlap)) continue;
      const shape = randomShape(rng, type, cx, cy);
      const mask = rasterizeShape(shape, width, height);
      const area = cropArea(mask);
      if (area < 10) continue;
      const ov = overlapPixels(occ, width, mask);
      if (ov > 0 && !(mayOverlap && ov <= 0.12 * area)) continue;
      occupy(occ, width, mask);
      masks.push(mask);
      centres.push({ x: cx, y: cy, r: shapeRadius(shape) });
      break;
    }
  }
  const cells: RenderCell[] = masks.map(() => ({
    mask: undefined as unknown as MaskCrop,
    darkness: Math.max(4, rng.normal(type === 'astro' ? 10 : 15, 3.5)),
    halo: Math.max(8, rng.normal(24, 6)),
  }));
  masks.forEach((m, i) => (cells[i]!.mask = m));
  const neurites: Neurite[] = [];
  const nNeurites = type === 'shsy5y' ? Math.round(target * 0.3) : type === 'cort' ? Math.round(target * 0.5) : 0;
  for (let i = 0; i < nNeurites && centres.length > 0; i++) {
    const c = centres[rng.int(0, centres.length)]!;
    const dir = rng.uniform(0, 2 * Math.PI);
    const len = rng.uniform(15, 60);
    const mid: [number, number] = [c.x + Math.cos(dir) * len * 0.5, c.y + Math.sin(dir) * len * 0.5];
    const d2 = dir + rng.normal(0, 0.4);
    neurites.push({ points: [[c.x, c.y], mid, [mid[0] + Math.cos(d2) * len * 0.5, mid[1] + Math.sin(d2) * len * 0.5]], width: 1 });
  }
  return { pixels: renderImage(rng, width, height, cells, neurites), masks };
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Builds every image in memory (deterministic for the options). Calls onImage after each. */
export function* synthImages(opts: SynthOptions, split: 'train' | 'test'): Generator<SynthImage> {
  // Separate streams for train and test so changing the test count leaves train images unchanged.
  const rng = new Rng((opts.seed * 2654435761 + (split === 'train' ? 1 : 2)) >>> 0);
  const count = split === 'train' ? opts.trainImages : opts.testImages;
  for (let i = 0; i < count; i++) {
    const type = CELL_TYPES[i % 3]!;
    const id = hexId(rng);
    const hours = rng.int(8, 80);
    const minutes = rng.int(0, 2) * 30;
    const sampleNo = Math.floor(i / 6); // two images of each type share a sample
    const vessel = 700 + ((opts.seed + sampleNo * 7 + CELL_TYPES.indexOf(type) * 131) % 300);
    const { pixels, masks } = synthImage(rng, type, opts.width, opts.height, opts.overlapFraction ?? 0.08);
    const meta: TrainImage = {
      id,
      width: opts.width,
      height: opts.height,
      cellType: type,
      plateTime: `${pad2(hours)}h${pad2(minutes)}m00s`,
      sampleDate: `2020-0${1 + (sampleNo % 9)}-1${sampleNo % 10}`,
      sampleId: `${type}[${SAMPLE_TAG[type]}]_${split === 'train' ? 'E' : 'T'}${10 + sampleNo}-4_Vessel-${vessel}_Ph_${1 + (sampleNo % 4)}`,
      elapsedTimedelta: `${Math.floor(hours / 24)} days ${pad2(hours % 24)}:${pad2(minutes)}:00`,
      instances: masks.map((m) => ({ runs: cropToRuns(m), line: 0 })),
    };
    yield { meta, pixels, masks };
  }
}

export interface SynthSummary {
  outDir: string;
  train: { id: string; cellType: CellType; instances: number }[];
  test: string[];
}

/**
 * Removes the temp folders `.<base>.<pid>.tmp` that killed runs left beside the output (those of
 * processes no longer running). Returns the names removed.
 */
export function removeStaleSynthTemps(parent: string, base: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(`.${base}.`) || !name.endsWith('.tmp')) continue;
    const pid = name.slice(base.length + 2, -4);
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid || isProcessAlive(Number(pid))) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Puts the finished folder `tmp` in place of `outDir`: an existing `outDir` is first renamed aside
 * (`.<name>.previous.<pid>`, the name `restoreInterruptedOutputDir` puts back if this process is
 * killed in between) and deleted only once the new folder is in place, so at every moment one
 * complete dataset exists under the name or beside it.
 */
function replaceDir(tmp: string, outDir: string): void {
  if (!existsSync(outDir)) {
    renameSync(tmp, outDir);
    return;
  }
  const aside = join(dirname(outDir), `.${basename(outDir)}.previous.${process.pid}`);
  renameSync(outDir, aside);
  try {
    renameSync(tmp, outDir);
  } catch (err) {
    renameSync(aside, outDir);
    throw err;
  }
  rmSync(aside, { recursive: true, force: true });
}

/**
 * Writes the dataset into a temp folder beside `outDir` and renames it into place, so a failed
 * run leaves nothing half-written. An existing `outDir` is replaced only with `force`.
 */
export function writeSynthDataset(outDir: string, opts: SynthOptions, force = false, onImage?: (done: number, total: number) => void): SynthSummary {
  if (!Number.isInteger(opts.trainImages) || opts.trainImages < 0 || !Number.isInteger(opts.testImages) || opts.testImages < 0) {
    throw new UserError('synth: image counts must be non-negative integers');
  }
  if (!Number.isInteger(opts.width) || !Number.isInteger(opts.height) || opts.width < 32 || opts.height < 32) {
    throw new UserError('synth: width and height must be integers >= 32');
  }
  restoreInterruptedOutputDir(outDir); // a run killed between replaceDir's renames
  if (existsSync(outDir) && !force) throw new UserError(`synth: ${outDir} already exists (use --force to replace it)`);
  mkdirSync(dirname(outDir), { recursive: true });
  removeStaleSynthTemps(dirname(outDir), basename(outDir));
  const tmp = join(dirname(outDir), `.${basename(outDir)}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'train'), { recursive: true });
  mkdirSync(join(tmp, 'test'), { recursive: true });
  const total = opts.trainImages + opts.testImages;
  let done = 0;
  const summary: SynthSummary = { outDir, train: [], test: [] };
  try {
    let csv = trainCsvHeader();
    for (const img of synthImages(opts, 'train')) {
      writeFileSync(join(tmp, 'train', `${img.meta.id}.png`), encodePngGray({ width: opts.width, height: opts.height, data: img.pixels }));
      csv += trainCsvRows(img.meta);
      summary.train.push({ id: img.meta.id, cellType: img.meta.cellType, instances: img.masks.length });
      onImage?.(++done, total);
    }
    writeFileSync(join(tmp, 'train.csv'), csv);
    let sample = 'id,predicted\n';
    for (const img of synthImages(opts, 'test')) {
      writeFileSync(join(tmp, 'test', `${img.meta.id}.png`), encodePngGray({ width: opts.width, height: opts.height, data: img.pixels }));
      sample += `${img.meta.id},\n`;
      summary.test.push(img.meta.id);
      onImage?.(++done, total);
    }
    writeFileSync(join(tmp, 'sample_submission.csv'), sample);
    replaceDir(tmp, outDir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw asWriteError(err, outDir); // a full disk etc.: one line naming the output, not a stack
  }
  return summary;
}
