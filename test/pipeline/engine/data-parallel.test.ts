// Data parallelism (--num-gpus): 2 devices with a batch of 2 (one image each) give the same weights
// and logged losses as 1 device with the batch of 2, after 3 steps, to float tolerance; the
// replica on device 1 ends identical to replica 0; with accumulation inside each device too.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init, rt, type Runtime } from '../../../runtime/runtime';
import { openDevices } from '../../../runtime/devices';
import { UserError } from '../../../runtime/errors';
import { loadConfig } from '../../../models/config/config';
import { train } from '../../../pipeline/engine/trainer';
import { modelStateToHost } from '../../../pipeline/engine/checkpoint';
import type { HostTensor } from '../../../engine/checkpoint/host-tensor';
import type { TrainingSet } from '../../../pipeline/data/train-loader';
import { StandInModel } from './standin';

const CONFIG = 'configs/sartorius_centermask_lite_V_19_slim.yaml';
const BASE = [
  'INPUT.MIN_SIZE_TRAIN', '(12, 16)',
  'INPUT.MAX_SIZE_TRAIN', '24',
  'SOLVER.BASE_LR', '0.1',
  'SOLVER.WEIGHT_DECAY', '0.01',
  'SOLVER.WARMUP_ITERS', '1',
  'SOLVER.STEPS', '(2,)',
  'SOLVER.CHECKPOINT_PERIOD', '0',
  'SOLVER.CLIP_GRADIENTS.ENABLED', 'True',
  'SOLVER.CLIP_GRADIENTS.CLIP_TYPE', 'full_model',
  'SOLVER.CLIP_GRADIENTS.CLIP_VALUE', '0.5',
  'SOLVER.MAX_ITER', '3',
  'TEST.EVAL_PERIOD', '0',
  'SEED', '7',
];

const IMAGES = new Map<string, Uint8Array>();
function makeSet(): TrainingSet {
  const records = [0, 1, 2, 3].map((i) => {
    const W = 20;
    const H = 14;
    const img = new Uint8Array(W * H).fill(20 + 10 * i);
    const x0 = 2 + 3 * (i % 3);
    for (let y = 3; y < 9; y++) for (let x = x0; x < x0 + 5 + i; x++) img[y * W + x] = 220;
    IMAGES.set(`img${i}`, img);
    const box: [number, number, number, number] = [x0, 3, x0 + 5 + i, 9];
    const annotations = Array.from({ length: i + 1 }, () => ({ box, category: i % 3, polygons: [[x0, 3, x0 + 5 + i, 3, x0 + 5 + i, 9, x0, 9]] }));
    return { imageId: i + 1, file: `img${i}`, width: W, height: H, annotations };
  });
  return { records, categoryIds: [1, 2, 3], skippedEmpty: 0 };
}

/** A replica the trainer's clean-up leaves alone, so that the test can read its weights after training. */
class KeptStandIn extends StandInModel {
  override dispose(): void {}
}

let dir: string;
let devs: readonly Runtime[];
beforeAll(async () => {
  await init();
  devs = await openDevices(2);
  dir = mkdtempSync(join(tmpdir(), 'cellgpu-dp-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(name: string, devices: number, extra: string[] = []) {
  const cfg = loadConfig(CONFIG, [...BASE, ...extra]);
  const model = new StandInModel();
  const replicas: StandInModel[] = [];
  const logs: string[] = [];
  const out = join(dir, name);
  await train({
    cfg, model, train: makeSet(), outputDir: out, logPeriod: 1, readGray: (f) => IMAGES.get(f)!, log: (l) => logs.push(l), progressBar: false,
    ...(devices > 1 ? { devices: devs.slice(0, devices), buildReplica: () => { const m = new KeptStandIn(); replicas.push(m); return m; } } : {}),
  });
  const metrics = readFileSync(join(out, 'metrics.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  return { model, replicas, logs, metrics };
}

function expectClose(a: Map<string, HostTensor>, b: Map<string, HostTensor>, tol = 1e-5) {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [k, t] of a) {
    const x = t.data as Float32Array;
    const y = b.get(k)!.data as Float32Array;
    for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!), `${k}[${i}]`).toBeLessThan(tol * Math.max(1, Math.abs(x[i]!)));
  }
}

describe('data parallelism (--num-gpus)', () => {
  it('2 devices x 1 image equal 1 device x 2 images after 3 steps; replicas stay identical', async () => {
    const one = await run('one', 1, ['SOLVER.IMS_PER_BATCH', '2']);
    const two = await run('two', 2, ['SOLVER.IMS_PER_BATCH', '2']);
    expect(two.logs).toContain('data parallel: 2 devices, 1 images each per iteration');
    expect(two.replicas).toHaveLength(1);
    expect(two.model.calls).toBe(3);
    expect(two.replicas[0]!.calls).toBe(3);
    const w1 = await modelStateToHost(one.model);
    const w2 = await modelStateToHost(two.model);
    expectClose(w1, w2);
    // the replica lives on device 1 and holds the same weights, bit for bit (same gradients, same update)
    expect(two.replicas[0]!.head.weight.storage.runtime).toBe(devs[1]);
    const r = await modelStateToHost(two.replicas[0]!);
    for (const [k, t] of w2) expect(Buffer.from(r.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    one.metrics.forEach((m, i) => {
      for (const key of ['total_loss', 'loss_fcos_cls', 'loss_fcos_loc', 'loss_mask', 'lr']) {
        expect(Math.abs(m[key]! - two.metrics[i]![key]!), `${key} @${i}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(m[key]!)));
      }
    });
    expect(rt()).toBe(devs[0]);
  });

  it('with accumulation on each device: 2 devices x 2 micro-batches of 1 equal 1 device x 4 images', async () => {
    const one = await run('one4', 1, ['SOLVER.IMS_PER_BATCH', '4']);
    const two = await run('two4', 2, ['SOLVER.IMS_PER_BATCH', '4', 'SOLVER.MICRO_BATCH_SIZE', '1']);
    expect(two.model.calls).toBe(6);
    expectClose(await modelStateToHost(one.model), await modelStateToHost(two.model));
  });

  it('with SOLVER.AMP.ENABLED (a GradScaler per replica): 2 devices x 1 image equal 1 device x 2 images', async () => {
    if (!rt().gpu.features.f16) return;
    const amp = ['SOLVER.IMS_PER_BATCH', '2', 'SOLVER.AMP.ENABLED', 'True'];
    const one = await run('one-amp', 1, amp);
    const two = await run('two-amp', 2, amp);
    expect(two.logs.some((l) => l.startsWith('mixed precision (SOLVER.AMP.ENABLED)'))).toBe(true);
    expectClose(await modelStateToHost(one.model), await modelStateToHost(two.model));
    const r = await modelStateToHost(two.replicas[0]!);
    for (const [k, t] of await modelStateToHost(two.model)) expect(Buffer.from(r.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    expect(rt()).toBe(devs[0]);
  });

  it('IMS_PER_BATCH must be divisible by the device count, and the images per device by MICRO_BATCH_SIZE', async () => {
    await expect(run('odd', 2, ['SOLVER.IMS_PER_BATCH', '3'])).rejects.toThrow(UserError);
    await expect(run('odd2', 2, ['SOLVER.IMS_PER_BATCH', '3'])).rejects.toThrow(/divisible by the number of devices \(--num-gpus 2\)/);
    await expect(run('odd3', 2, ['SOLVER.IMS_PER_BATCH', '6', 'SOLVER.MICRO_BATCH_SIZE', '2'])).rejects.toThrow(
      'the 3 images per device (SOLVER.IMS_PER_BATCH 6 / --num-gpus 2) must be a multiple of SOLVER.MICRO_BATCH_SIZE 2',
    );
  });
});
