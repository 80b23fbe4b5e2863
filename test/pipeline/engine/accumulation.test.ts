// Gradient accumulation (SOLVER.MICRO_BATCH_SIZE): 2 micro-batches of 1 image give the same
// weights, momentum and logged losses as one batch of 2, to float tolerance, on the stand-in model
// (GroupNorm, losses averaged over images: no statistic spans images). And the trainer's memory
// handling: the peak report after the first iterations, a step that does not fit explained.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../runtime/runtime';
import { UserError } from '../../../runtime/errors';
import { loadConfig } from '../../../models/config/config';
import { microBatches, train } from '../../../pipeline/engine/trainer';
import { modelStateToHost } from '../../../pipeline/engine/checkpoint';
import type { TrainingSet } from '../../../pipeline/data/train-loader';
import { GpuError } from '../../../runtime/device';
import { StandInModel } from './standin';

const CONFIG = 'configs/sartorius_centermask_lite_V_19_slim.yaml';
const BASE = [
  'INPUT.MIN_SIZE_TRAIN', '(12, 16)',
  'INPUT.MAX_SIZE_TRAIN', '24',
  'SOLVER.IMS_PER_BATCH', '2',
  'SOLVER.BASE_LR', '0.1',
  'SOLVER.WEIGHT_DECAY', '0.01',
  'SOLVER.WARMUP_ITERS', '0',
  'SOLVER.STEPS', '(2,)',
  'SOLVER.CHECKPOINT_PERIOD', '0',
  'SOLVER.CLIP_GRADIENTS.ENABLED', 'True',
  'SOLVER.CLIP_GRADIENTS.CLIP_TYPE', 'full_model',
  'SOLVER.CLIP_GRADIENTS.CLIP_VALUE', '0.5',
  'SOLVER.MAX_ITER', '3',
  'TEST.EVAL_PERIOD', '0',
  'SEED', '5',
];

const IMAGES = new Map<string, Uint8Array>();
function makeSet(): TrainingSet {
  const records = [0, 1, 2].map((i) => {
    const W = 20;
    const H = 14;
    const img = new Uint8Array(W * H).fill(20 + 10 * i);
    const x0 = 2 + 3 * i;
    for (let y = 3; y < 9; y++) for (let x = x0; x < x0 + 5 + i; x++) img[y * W + x] = 220;
    IMAGES.set(`img${i}`, img);
    const box: [number, number, number, number] = [x0, 3, x0 + 5 + i, 9];
    const annotations = Array.from({ length: i + 1 }, () => ({ box, category: i % 3, polygons: [[x0, 3, x0 + 5 + i, 3, x0 + 5 + i, 9, x0, 9]] }));
    return { imageId: i + 1, file: `img${i}`, width: W, height: H, annotations };
  });
  return { records, categoryIds: [1, 2, 3], skippedEmpty: 0 };
}

let dir: string;
beforeAll(async () => {
  await init();
  dir = mkdtempSync(join(tmpdir(), 'cellgpu-accum-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(name: string, micro: number, model = new StandInModel()) {
  const cfg = loadConfig(CONFIG, [...BASE, 'SOLVER.MICRO_BATCH_SIZE', String(micro)]);
  const logs: string[] = [];
  const out = join(dir, name);
  await train({ cfg, model, train: makeSet(), outputDir: out, logPeriod: 1, readGray: (f) => IMAGES.get(f)!, log: (l) => logs.push(l), progressBar: false });
  const metrics = readFileSync(join(out, 'metrics.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  return { model, logs, metrics, calls: model.calls };
}

describe('gradient accumulation (SOLVER.MICRO_BATCH_SIZE)', () => {
  it('micro-batch ranges; IMS_PER_BATCH must be a multiple', () => {
    expect(microBatches(4, 0)).toEqual([[0, 4]]);
    expect(microBatches(4, 4)).toEqual([[0, 4]]);
    expect(microBatches(4, 1)).toEqual([[0, 1], [1, 2], [2, 3], [3, 4]]);
    expect(microBatches(4, 2)).toEqual([[0, 2], [2, 4]]);
    expect(() => microBatches(4, 3)).toThrow(UserError);
    expect(() => microBatches(4, 3)).toThrow(/multiple of SOLVER.MICRO_BATCH_SIZE/);
    expect(() => microBatches(4, -1)).toThrow(UserError);
  });

  it('2 micro-batches of 1 equal one batch of 2 after 3 steps (weights, logged losses)', async () => {
    const a = await run('full', 0);
    const b = await run('micro', 1);
    expect(a.calls).toBe(3);
    expect(b.calls).toBe(6);
    expect(b.logs.some((l) => l.includes('gradient accumulation: 2 micro-batches of 1 images'))).toBe(true);
    // the memory report after the first 3 iterations
    expect(a.logs.filter((l) => /^peak GPU memory over the first 3 iterations: [\d.]+ MiB of live tensors/.test(l))).toHaveLength(1);
    const wa = await modelStateToHost(a.model);
    const wb = await modelStateToHost(b.model);
    const fresh = await modelStateToHost(new StandInModel());
    for (const [k, t] of wa) {
      const x = t.data as Float32Array;
      const y = wb.get(k)!.data as Float32Array;
      for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!), `${k}[${i}]`).toBeLessThan(1e-5 * Math.max(1, Math.abs(x[i]!)));
    }
    // and training moved the head
    expect(Math.abs((wa.get('head.weight')!.data as Float32Array)[0]! - (fresh.get('head.weight')!.data as Float32Array)[0]!)).toBeGreaterThan(1e-4);
    expect(a.metrics.length).toBe(3);
    a.metrics.forEach((m, i) => {
      for (const key of ['total_loss', 'loss_fcos_cls', 'loss_fcos_loc', 'loss_mask']) {
        expect(Math.abs(m[key]! - b.metrics[i]![key]!), `${key} @${i}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(m[key]!)));
      }
    });
  });

  it('a step that runs out of device memory fails with a UserError naming the largest tensor and the remedies', async () => {
    class Oom extends StandInModel {
      override async losses(...a: Parameters<StandInModel['losses']>) {
        const l = await super.losses(...a);
        if (this.calls === 2) throw new GpuError('WebGPU GPUOutOfMemoryError: Failed to allocate 9663676416 bytes');
        return l;
      }
    }
    const err = (await run('oom', 0, new Oom()).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain('training iteration 1 does not fit this device: WebGPU GPUOutOfMemoryError');
    expect(err.message).toMatch(/The largest tensor since training started was tensor\[[\d,]+\]f32/);
    expect(err.message).toContain('SOLVER.MICRO_BATCH_SIZE 1');
    expect(err.message).toContain('SOLVER.AMP.ENABLED True');
  });
});
