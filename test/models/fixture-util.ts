// Locating and reading the CenterMask2 oracle fixtures: the folder named by CENTERMASK2_FIXTURES,
// else ../shared/fixtures/centermask2 next to the repository. Every fixture test reads what it
// assumes about the set (model folders, their config, which tensors exist) from the folder itself,
// so any fixture set in the same layout is checked the same way. Tests fail with a clear message
// when the folder is missing.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '../../engine/checkpoint/host-tensor';
import { readSafetensors } from '../../engine/checkpoint/safetensors';
import { type CfgNode, loadConfig } from '../../models/config/config';
import type { GtInstances, ImageInput } from '../../models/centermask';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The fixture folder (CENTERMASK2_FIXTURES, else ../shared/fixtures/centermask2); may not exist. */
export function fixtureDir(): string {
  return resolve(process.env.CENTERMASK2_FIXTURES || resolve(repoRoot, '..', 'shared', 'fixtures', 'centermask2'));
}

/** The fixture folder; throws a clear error when it (its input.safetensors) is missing. */
export function fixtureRoot(): string {
  const dir = fixtureDir();
  if (!existsSync(resolve(dir, 'input.safetensors'))) {
    throw new Error(`CenterMask2 fixtures not found at ${dir} (expected input.safetensors there); set CENTERMASK2_FIXTURES to their folder`);
  }
  return dir;
}

/** What a model folder's manifest.json says about it (the parts tests use). */
export interface FixtureManifest {
  /** The config file the oracle ran, e.g. 'configs/centermask/centermask_lite_V_39_eSE_FPN_ms_4x.yaml'. */
  config_file?: string;
  /** Config overrides applied on top of it (key -> value). */
  overrides?: Record<string, string | number | boolean>;
  /** Per file of the folder: its size and sha256. */
  files?: Record<string, { bytes?: number; sha256?: string }>;
  /** Per safetensors file: the tensors it holds (name -> dtype, shape, description). */
  tensors?: Record<string, Record<string, { dtype: string; shape: number[] }>>;
}

/** A model folder's manifest.json (empty when the folder has none). */
export function fixtureManifest(model: string, root = fixtureDir()): FixtureManifest {
  const file = join(root, model, 'manifest.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FixtureManifest) : {};
}

/**
 * The model folders of the fixture set (sub-folders with a config.yaml), sorted, keeping those that
 * hold every file in `files` and, per file, every tensor in `tensors` (from the folder's
 * manifest.json). An empty list when the fixture folder is missing (callers assert it is not).
 */
export function fixtureModels(opts: { files?: string[]; tensors?: Record<string, string[]> } = {}, root = fixtureDir()): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'config.yaml')))
    .map((d) => d.name)
    .filter((m) => (opts.files ?? []).every((f) => existsSync(join(root, m, f))))
    .filter((m) => {
      const listed = fixtureManifest(m, root).tensors ?? {};
      return Object.entries(opts.tensors ?? {}).every(([file, names]) => names.every((n) => listed[file]?.[n] !== undefined));
    })
    .sort();
}

/** The full config the oracle ran for a model folder (its config.yaml, as detectron2 dumped it). */
export function fixtureConfig(model: string, root = fixtureDir()): CfgNode {
  return loadConfig(join(root, model, 'config.yaml'));
}

export async function readTensors(file: string): Promise<Map<string, HostTensor>> {
  return (await readSafetensors(file)).tensors;
}

export function toNumbers(t: HostTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** Max |a - b| relative to max |b| (the fixture README's suggested measure). */
export function relToMaxAbs(actual: ArrayLike<number>, expected: ArrayLike<number>): { maxAbs: number; rel: number } {
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return { maxAbs, rel: maxAbs / Math.max(scale, 1e-30) };
}

/**
 * The oracle input as the model sees it: (image - PIXEL_MEAN) / PIXEL_STD per channel (in the
 * config's channel order, which is the stored image's), zero-padded on the bottom and right to a
 * multiple of `divisibility` (Detectron2's ImageList.from_tensors pads after normalisation), so any
 * fixture image size works. Returns [1, C, H', W'] values and the shape.
 */
export function paddedModelInput(image: HostTensor, divisibility: number, mean: readonly number[], std: readonly number[]): { data: Float32Array; shape: [number, number, number, number] } {
  const [c, h, w] = image.shape as [number, number, number];
  if (mean.length !== c || std.length !== c) throw new Error(`paddedModelInput: ${c} channels but PIXEL_MEAN has ${mean.length} and PIXEL_STD ${std.length} values`);
  const div = Math.max(1, divisibility);
  const hp = Math.ceil(h / div) * div;
  const wp = Math.ceil(w / div) * div;
  const src = image.data as Float32Array;
  const data = new Float32Array(c * hp * wp);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[(k * hp + y) * wp + x] = Math.fround((src[(k * h + y) * w + x]! - mean[k]!) / std[k]!);
    }
  }
  return { data, shape: [1, c, hp, wp] };
}

/** A model folder's training oracle: the fixture image as the model's input, its ground truth
 *  (gt.json: boxes, classes, polygons), the stored losses and gradients, and the names of the
 *  stored losses that are CenterMask losses (not the sums). */
export async function readTrainingFixture(root: string, model: string): Promise<{ input: ImageInput; gts: GtInstances; expectedLosses: Map<string, HostTensor>; expectedGrads: Map<string, HostTensor>; stored: string[] }> {
  const image = (await readTensors(`${root}/input.safetensors`)).get('image')!;
  const [, h, w] = image.shape as [number, number, number];
  const gt = JSON.parse(readFileSync(`${root}/gt.json`, 'utf8')) as { instances: { class: number; polygons: number[][]; box_xyxy: number[] }[] };
  const gts: GtInstances = {
    boxes: Float32Array.from(gt.instances.flatMap((i) => i.box_xyxy)),
    classes: Int32Array.from(gt.instances.map((i) => i.class)),
    polygons: gt.instances.map((i) => i.polygons),
  };
  const expectedLosses = await readTensors(`${root}/${model}/train.safetensors`);
  const expectedGrads = await readTensors(`${root}/${model}/grads.safetensors`);
  const sums = new Set(['loss.total', 'loss.fcos_total']);
  const stored = [...expectedLosses.keys()].filter((k) => k.startsWith('loss.') && !sums.has(k)).map((k) => k.slice('loss.'.length));
  return { input: { image: image.data as Float32Array, height: h, width: w, origHeight: h, origWidth: w }, gts, expectedLosses, expectedGrads, stored };
}
