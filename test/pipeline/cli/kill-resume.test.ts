// kill -9 and --resume: `cellseg train` of the real CenterMask-Lite (V-19-slim, 64x64 crops, one
// image per batch, 4 iterations, a checkpoint every 2) is killed with SIGKILL twice —
//   A. mid-iteration: the `cellseg` the user started is killed while iteration 3 runs (after
//      metrics.json has iteration 2's line, after the checkpoint of iteration 1);
//   B. inside a checkpoint write: the trainer is held (a preloaded test hook) just before the
//      rename of model_0000003.safetensors, whose state file is already in place, and killed there —
// and resumed with --resume. Each resumed run must reproduce the uninterrupted run bit for bit:
// metrics.json's losses line for line and the final (and last periodic) checkpoint's bytes; the
// killed write's temporary file is removed at the next start, and killing `cellseg` kills the
// trainer it runs as a child (cli/native-stderr.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSynthDataset } from '../../../pipeline/data/synth/dataset';
import { readTrainCsvAll } from '../../../pipeline/data/train-csv';
import { buildCocoDataset } from '../../../pipeline/data/coco/build';
import { writeJsonAtomic } from '../../../pipeline/io/atomic';
import { makeTempDir } from '../tmp';

const ROOT = new URL('../../../', import.meta.url).pathname;
const tmp = makeTempDir('kill-resume');
afterAll(tmp.cleanup);
const data = join(tmp.dir, 'data');
const coco = join(tmp.dir, 'coco.json');

beforeAll(async () => {
  writeSynthDataset(data, { seed: 5, trainImages: 2, testImages: 0, width: 64, height: 64 }, true);
  const { dataset } = buildCocoDataset(await readTrainCsvAll(join(data, 'train.csv')), { segmentation: 'rle', imageDir: 'train' });
  writeJsonAtomic(coco, dataset, 0);
});

const trainArgs = (out: string, resume = false) => [
  'train', ...(resume ? ['--resume'] : []), '--no-eval', '--log-period', '1',
  '--config-file', join(ROOT, 'configs/synth_centermask_lite_V_19_slim_scratch.yaml'), '--train-json', coco, '--image-root', data,
  'INPUT.CROP.SIZE', '[64, 64]', 'INPUT.MIN_SIZE_TRAIN', '(64,)', 'SOLVER.IMS_PER_BATCH', '1', 'SOLVER.MAX_ITER', '4',
  'SOLVER.WARMUP_ITERS', '2', 'SOLVER.STEPS', '(100,)', 'SOLVER.CHECKPOINT_PERIOD', '2', 'OUTPUT_DIR', out,
];

interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
}

function cellseg(args: string[], env: Record<string, string> = {}): Run {
  const loader = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  const hook = pathToFileURL(join(ROOT, 'test/pipeline/cli/durable-fs-hook.ts')).href;
  const child = spawn(process.execPath, ['--import', loader, '--import', hook, join(ROOT, 'pipeline/cli/main.ts'), ...args], { cwd: tmp.dir, env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, out, err })),
  );
  return { child, done };
}

async function until(what: string, cond: () => boolean, run: Run, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  let exited = false;
  void run.done.then(() => (exited = true));
  while (!cond()) {
    if (exited) throw new Error(`the run ended before ${what}: ${(await run.done).err}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Whether a process is gone (or a zombie nobody reaps). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
}

const metricsLines = (dir: string) => readFileSync(join(dir, 'metrics.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
/** The lines without the wall-clock fields. */
const losses = (dir: string) => metricsLines(dir).map(({ time: _t, data_time: _d, eta_seconds: _e, ...rest }) => rest);
const bytes = (dir: string, f: string) => readFileSync(join(dir, f));
const temps = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

function expectSameAsFull(dir: string, full: string): void {
  expect(losses(dir)).toEqual(losses(full));
  expect(metricsLines(dir).map((l) => l.iteration)).toEqual([0, 1, 2, 3]);
  for (const f of ['model_final.safetensors', 'model_final.state.safetensors', 'model_0000003.safetensors', 'model_0000003.state.safetensors']) {
    expect(bytes(dir, f).equals(bytes(full, f)), f).toBe(true);
  }
  expect(readFileSync(join(dir, 'last_checkpoint'), 'utf8')).toBe('model_final.safetensors');
  expect(temps(dir)).toEqual([]);
}

describe('cellseg train: kill -9 and --resume reproduce the uninterrupted run', () => {
  const full = join(tmp.dir, 'full');
  const a = join(tmp.dir, 'killed-mid-iteration');
  const b = join(tmp.dir, 'killed-in-checkpoint-write');
  let fullRun: Run;

  it('A: cellseg killed mid-iteration, its trainer with it; --resume continues from the last checkpoint', async () => {
    fullRun = cellseg(trainArgs(full)); // runs beside A (two cores)
    const run = cellseg(trainArgs(a));
    await until('iteration 2 in metrics.json', () => existsSync(join(a, 'metrics.json')) && /"iteration":2\b/.test(readFileSync(join(a, 'metrics.json'), 'utf8')), run);
    // `cellseg` runs the trainer as a child (stderr filter): kill the parent the user started
    const children = readFileSync(`/proc/${run.child.pid}/task/${run.child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    const trainer = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('main.ts'))!;
    expect(trainer).toBeGreaterThan(0);
    run.child.kill('SIGKILL');
    expect((await run.done).signal).toBe('SIGKILL');
    const t0 = Date.now();
    while (!gone(trainer) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 25));
    expect(gone(trainer), 'the trainer outlived the killed cellseg').toBe(true);
    expect(readFileSync(join(a, 'last_checkpoint'), 'utf8')).toBe('model_0000001.safetensors');

    const resumed = await cellseg(trainArgs(a, true)).done;
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.out).toMatch(/resumed from .*model_0000001\.safetensors: continuing at iteration 2 of 4/);
    expect(resumed.out).toMatch(/metrics\.json: dropped 1 line of the interrupted run after iteration 1/);
    const f = await fullRun.done;
    expect(f.code, f.err).toBe(0);
    expectSameAsFull(a, full);
  }, 300_000);

  it('B: killed between writing model_0000003.safetensors and renaming it; the temp file goes at the next start', async () => {
    const marker = join(tmp.dir, 'stalled');
    const run = cellseg(trainArgs(b), {
      CELLSEG_TEST_STALL_RENAME: '^model_0000003\\.safetensors$',
      CELLSEG_TEST_STALL_MARKER: marker,
      CELLSEG_STDERR_FILTERED: '1', // no stderr-filter parent: the hook holds the trainer itself
    });
    await until('the held checkpoint write', () => existsSync(marker), run);
    run.child.kill('SIGKILL');
    expect((await run.done).signal).toBe('SIGKILL');
    const left = temps(b);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.model_0000003\.safetensors\.\d+\.[0-9a-f]{8}\.tmp$/);
    expect(existsSync(join(b, 'model_0000003.state.safetensors'))).toBe(true); // state first, weights second
    expect(existsSync(join(b, 'model_0000003.safetensors'))).toBe(false);
    expect(readFileSync(join(b, 'last_checkpoint'), 'utf8')).toBe('model_0000001.safetensors');

    const resumed = await cellseg(trainArgs(b, true)).done;
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.out).toContain(`removed 1 temporary file of an interrupted checkpoint write: ${left[0]}`);
    expect(resumed.out).toMatch(/continuing at iteration 2 of 4/);
    await fullRun.done;
    expectSameAsFull(b, full);
  }, 300_000);
});
