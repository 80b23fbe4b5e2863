// Disk errors in commands with several outputs (split: 2K + 1 files; coco: --out and --test-out;
// analyze: --out and --figure): a write that fails part-way (ENOSPC injected into the durable
// writer by the preloaded test hook, after some bytes of one output) ends the command with exit 1
// and one line `cellseg: PATH: could not write: REASON`; every output of the previous run is left
// byte for byte, none of the new run appears, and no temporary file is left. (`cellseg run` builds
// its folder with io/fresh-output-dir.ts, tested in test/pipeline/io/fresh-output-dir.test.ts.)
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSynthDataset } from '../../../pipeline/data/synth/dataset';
import { makeTempDir } from '../tmp';

const ROOT = new URL('../../../', import.meta.url).pathname;
const tmp = makeTempDir('partial-writes');
afterAll(tmp.cleanup);
const data = join(tmp.dir, 'data');
beforeAll(() => {
  writeSynthDataset(data, { seed: 3, trainImages: 4, testImages: 2, width: 48, height: 40 }, true);
});

function cellseg(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const loader = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  const hook = pathToFileURL(join(ROOT, 'test/pipeline/cli/durable-fs-hook.ts')).href;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', loader, '--import', hook, join(ROOT, 'pipeline/cli/main.ts'), ...args], { cwd: tmp.dir, env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Every file under `dir` (relative name -> bytes), temporary files included. */
function snapshot(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    try {
      m.set(f, readFileSync(join(dir, f), 'latin1'));
    } catch {
      m.set(f, '<dir>');
    }
  }
  return m;
}

/** Runs `args` once to make the previous outputs, then `failing` with `target` failing after
 *  `after` bytes; checks the one-line error and that `dir` is unchanged; then `failing` without
 *  the failure, which must change `dir`. */
async function expectAllOrNothing(dir: string, args: string[], failing: string[], target: string, after: number): Promise<void> {
  const first = await cellseg(args);
  expect(first.code, first.err).toBe(0);
  const before = snapshot(dir);
  expect([...before.keys()].some((f) => f.endsWith('.tmp'))).toBe(false);
  const r = await cellseg(failing, { CELLSEG_TEST_FAIL_WRITE: `^${target.replace(/\./g, '\\.')}$`, CELLSEG_TEST_FAIL_AFTER: String(after) });
  expect(r.code).toBe(1);
  const lines = r.err.split('\n').filter((l) => l.trim() !== '');
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^cellseg: \\S*${target.replace(/\./g, '\\.')}: could not write: no space left on device \\(ENOSPC\\)`));
  expect(snapshot(dir)).toEqual(before);
  // without the failure the new run does change the outputs (so the check above means something)
  const ok = await cellseg(failing);
  expect(ok.code, ok.err).toBe(0);
  expect(snapshot(dir)).not.toEqual(before);
}

describe('several outputs appear together or not at all on a disk error', () => {
  it('split: val_fold_1.json fails part-way; the previous 5 files stay, none of the new', async () => {
    await cellseg(['coco', '--data', data, '--out', join(tmp.dir, 'all.json'), '--test-out', join(tmp.dir, 'test.json')]);
    const dir = join(tmp.dir, 'folds');
    const args = (seed: string) => ['split', '--coco', join(tmp.dir, 'all.json'), '--out-dir', dir, '--folds', '2', '--seed', seed];
    await expectAllOrNothing(dir, args('1'), args('2'), 'val_fold_1.json', 100);
    expect(readdirSync(dir).sort()).toEqual(['folds.csv', 'train_fold_0.json', 'train_fold_1.json', 'val_fold_0.json', 'val_fold_1.json']);
  });

  it('coco: --test-out fails at its first byte; --out keeps the previous file', async () => {
    const dir = join(tmp.dir, 'coco');
    const args = (seg: string) => ['coco', '--data', data, '--out', join(dir, 'all.json'), '--test-out', join(dir, 'test.json'), '--segmentation', seg];
    await expectAllOrNothing(dir, args('rle'), args('polygon'), 'test.json', 0);
  });

  it('analyze: the figure fails after 1000 bytes; the shape report keeps the previous file', async () => {
    const dir = join(tmp.dir, 'analyze');
    const args = (csv: string) => ['analyze', '--train-csv', csv, '--out', join(dir, 'shape.json'), '--figure', join(dir, 'shape.svg')];
    // the previous outputs come from a smaller train.csv (its first image only), so the new ones would differ
    const lines = readFileSync(join(data, 'train.csv'), 'utf8').split('\n');
    const firstId = lines[1]!.split(',')[0]!;
    const small = join(tmp.dir, 'small.csv');
    writeFileSync(small, [lines[0], ...lines.slice(1).filter((l) => l.startsWith(`${firstId},`))].join('\n') + '\n');
    await expectAllOrNothing(dir, args(small), args(join(data, 'train.csv')), 'shape.svg', 1000);
  });
});
