import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTrainCsvAll } from '../../../../pipeline/data/train-csv';
import { readPngGray } from '../../../../pipeline/io/png';
import { writeSynthDataset } from '../../../../pipeline/data/synth/dataset';
import { buildShapeReport, collectShapeSamples } from '../../../../pipeline/shape/analyze';
import { makeTempDir } from '../../tmp';

const tmp = makeTempDir('synth');
afterAll(tmp.cleanup);
const opts = { seed: 5, trainImages: 3, testImages: 2, width: 240, height: 180 };

describe('synthetic dataset', () => {
  const a = join(tmp.dir, 'a');
  const s = writeSynthDataset(a, opts);

  it('writes the exact Sartorius layout', async () => {
    expect(readdirSync(a).sort()).toEqual(['sample_submission.csv', 'test', 'train', 'train.csv']);
    expect(readdirSync(join(a, 'train')).sort()).toEqual(s.train.map((t) => `${t.id}.png`).sort());
    expect(readFileSync(join(a, 'sample_submission.csv'), 'utf8')).toBe(`id,predicted\n${s.test.map((id) => `${id},\n`).join('')}`);
    const imgs = await readTrainCsvAll(join(a, 'train.csv'));
    expect(imgs.map((i) => i.cellType)).toEqual(['shsy5y', 'astro', 'cort']);
    for (const im of imgs) {
      expect(im.id).toMatch(/^[0-9a-f]{12}$/);
      expect(im.instances.length).toBeGreaterThan(0);
      const png = readPngGray(join(a, 'train', `${im.id}.png`), { width: 240, height: 180 });
      const mean = png.data.reduce((t, v) => t + v, 0) / png.data.length;
      expect(mean).toBeGreaterThan(110);
      expect(mean).toBeLessThan(140);
    }
    // shsy5y is the most crowded type, cort the sparsest (spec: ~337 / ~80 / ~34 per full image)
    expect(imgs[0]!.instances.length).toBeGreaterThan(imgs[2]!.instances.length);
  });

  it('is deterministic for a seed and differs for another seed', () => {
    const b = join(tmp.dir, 'b');
    writeSynthDataset(b, opts);
    expect(readFileSync(join(b, 'train.csv'))).toEqual(readFileSync(join(a, 'train.csv')));
    for (const f of readdirSync(join(a, 'train'))) expect(readFileSync(join(b, 'train', f))).toEqual(readFileSync(join(a, 'train', f)));
    const c = join(tmp.dir, 'c');
    writeSynthDataset(c, { ...opts, seed: 6 });
    expect(readFileSync(join(c, 'train.csv'), 'utf8')).not.toBe(readFileSync(join(a, 'train.csv'), 'utf8'));
  });

  it('refuses to overwrite without force and leaves no temp folder', () => {
    expect(() => writeSynthDataset(a, opts)).toThrow(/already exists/);
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(existsSync(join(a, 'train.csv'))).toBe(true);
  });

  it('removes the temp folders of killed runs (dead pids) and keeps those of running ones', () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = join(tmp.dir, `.k.${dead}.tmp`);
    const live = join(tmp.dir, `.k.${process.ppid}.tmp`);
    mkdirSync(join(stale, 'train'), { recursive: true });
    mkdirSync(live);
    writeSynthDataset(join(tmp.dir, 'k'), { ...opts, trainImages: 1, testImages: 0 });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(join(tmp.dir, 'k', 'train.csv'))).toBe(true);
  });

  it('with force, replaces the folder with no moment without a complete dataset, and puts back one a killed run had moved aside', () => {
    const r = join(tmp.dir, 'r');
    writeSynthDataset(r, { ...opts, trainImages: 1, testImages: 0 });
    const before = readFileSync(join(r, 'train.csv'), 'utf8');
    writeSynthDataset(r, { ...opts, seed: 9, trainImages: 1, testImages: 0 }, true);
    expect(readFileSync(join(r, 'train.csv'), 'utf8')).not.toBe(before);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('.r.'))).toEqual([]);
    // Killed between the two renames: the previous dataset sits aside under a dead pid and the
    // name is free. The next run puts it back first, so without force it is refused as existing.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const aside = join(tmp.dir, `.r.previous.${dead}`);
    renameSync(r, aside);
    expect(() => writeSynthDataset(r, { ...opts, trainImages: 1, testImages: 0 })).toThrow(/already exists/);
    expect(existsSync(aside)).toBe(false);
    expect(readFileSync(join(r, 'train.csv'), 'utf8')).not.toBe(before);
  });

  it('follows the per-type shape tendencies of the real data (astro largest and least solid, cort roundest)', async () => {
    const r = buildShapeReport('x', await collectShapeSamples(join(a, 'train.csv')));
    const f = (t: 'shsy5y' | 'astro' | 'cort') => r.cell_types[t]!.features;
    expect(f('astro').area.mean).toBeGreaterThan(f('shsy5y').area.mean);
    expect(f('astro').solidity.mean).toBeLessThan(f('cort').solidity.mean);
    expect(f('cort').axis_ratio.mean).toBeGreaterThan(f('shsy5y').axis_ratio.mean);
  });
});
