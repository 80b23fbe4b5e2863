// The trainer on a stand-in model: Detectron2 parameter groups, exact resume (2 + 2 steps ==
// 4 steps, bit for bit, weights and momentum), atomic checkpoints, metrics.json lines, NaN stop,
// fine-tuning that skips shape mismatches, flat memory across iterations.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../runtime/runtime';
import { memory } from '../../../engine/tensor';
import { hostTensor } from '../../../engine/checkpoint/host-tensor';
import { writeSafetensors, readSafetensors } from '../../../engine/checkpoint/safetensors';
import { loadConfig } from '../../../models/config/config';
import { buildParamGroups, buildOptimizer, paramGroupOptionsFromConfig } from '../../../pipeline/engine/solver';
import { FloatingPointError, train } from '../../../pipeline/engine/trainer';
import { loadPretrainedWeights, modelStateToHost } from '../../../pipeline/engine/checkpoint';
import type { TrainingSet } from '../../../pipeline/data/train-loader';
import { optimizerStateDict } from '../../../engine/optim/state';
import { StandInModel } from './standin';

const CONFIG = 'configs/sartorius_centermask_lite_V_19_slim.yaml';
const BASE = [
  'INPUT.MIN_SIZE_TRAIN', '(12, 16)',
  'INPUT.MAX_SIZE_TRAIN', '24',
  'INPUT.RANDOM_FLIP', 'horizontal',
  'SOLVER.IMS_PER_BATCH', '2',
  'SOLVER.BASE_LR', '0.1',
  'SOLVER.WEIGHT_DECAY', '0.01',
  'SOLVER.STEPS', '(3,)',
  'SOLVER.WARMUP_ITERS', '2',
  'SOLVER.WARMUP_FACTOR', '0.5',
  'SOLVER.CHECKPOINT_PERIOD', '2',
  'SOLVER.CLIP_GRADIENTS.ENABLED', 'True',
  'SOLVER.CLIP_GRADIENTS.CLIP_TYPE', 'norm',
  'SOLVER.CLIP_GRADIENTS.CLIP_VALUE', '0.5',
  'TEST.EVAL_PERIOD', '0',
  'SEED', '11',
];

// Three 20x14 images with bright rectangles as "cells".
const IMAGES = new Map<string, Uint8Array>();
function makeSet(): TrainingSet {
  const records = [0, 1, 2].map((i) => {
    const W = 20;
    const H = 14;
    const img = new Uint8Array(W * H).fill(20);
    const x0 = 2 + 3 * i;
    for (let y = 3; y < 9; y++) for (let x = x0; x < x0 + 5 + i; x++) img[y * W + x] = 220;
    IMAGES.set(`img${i}`, img);
    return {
      imageId: i + 1,
      file: `img${i}`,
      width: W,
      height: H,
      annotations: [{ box: [x0, 3, x0 + 5 + i, 9] as [number, number, number, number], category: i % 3, polygons: [[x0, 3, x0 + 5 + i, 3, x0 + 5 + i, 9, x0, 9]] }],
    };
  });
  return { records, categoryIds: [1, 2, 3], skippedEmpty: 0 };
}
const readGray = (f: string) => IMAGES.get(f)!;

let dir: string;
beforeAll(async () => {
  await init();
  dir = mkdtempSync(join(tmpdir(), 'cellgpu-train-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runTraining(out: string, maxIter: number, opts: { resume?: boolean; logPeriod?: number; model?: StandInModel } = {}) {
  const cfg = loadConfig(CONFIG, [...BASE, 'SOLVER.MAX_ITER', String(maxIter)]);
  const model = opts.model ?? new StandInModel();
  const logs: string[] = [];
  const r = await train({ cfg, model, train: makeSet(), outputDir: out, resume: opts.resume, logPeriod: opts.logPeriod ?? 2, readGray, log: (l) => logs.push(l), progressBar: false });
  return { r, model, logs };
}

describe('parameter groups (Detectron2 get_default_optimizer_params)', () => {
  it('norm parameters get WEIGHT_DECAY_NORM, biases BIAS_LR_FACTOR and WEIGHT_DECAY_BIAS', () => {
    const model = new StandInModel();
    const base = { baseLr: 0.1, weightDecay: 1e-4, weightDecayNorm: 0, biasLrFactor: 2, weightDecayBias: null };
    const g = buildParamGroups(model, base);
    const find = (name: string) => g.find((x) => x.names.includes(name))!;
    expect(find('norm.weight')).toMatchObject({ lr: 0.1, weightDecay: 0 });
    expect(find('norm.bias')).toMatchObject({ lr: 0.2, weightDecay: 0 }); // norm decay, bias lr
    expect(find('head.weight')).toMatchObject({ lr: 0.1, weightDecay: 1e-4 });
    expect(find('head.bias')).toMatchObject({ lr: 0.2, weightDecay: 1e-4 });
    expect(g.length).toBe(4);
    // WEIGHT_DECAY_BIAS set: overrides every bias, norm biases included (applied after the norm rule)
    const g2 = buildParamGroups(model, { ...base, biasLrFactor: 1, weightDecayBias: 0.5 });
    expect(g2.find((x) => x.names.includes('norm.bias'))).toMatchObject({ lr: 0.1, weightDecay: 0.5 });
    expect(g2.find((x) => x.names.includes('head.bias'))).toMatchObject({ lr: 0.1, weightDecay: 0.5 });
    // equal hyper-parameters merge, in first-seen order
    const g3 = buildParamGroups(model, { ...base, biasLrFactor: 1, weightDecayNorm: 1e-4 });
    expect(g3.length).toBe(1);
    expect(g3[0]!.names).toEqual(['norm.weight', 'norm.bias', 'head.weight', 'head.bias']);
  });

  it('from the config: the SGD groups carry the lr and decay of each rule', () => {
    const cfg = loadConfig(CONFIG, ['SOLVER.BIAS_LR_FACTOR', '2.0', 'SOLVER.BASE_LR', '0.01']);
    const model = new StandInModel();
    expect(paramGroupOptionsFromConfig(cfg)).toMatchObject({ baseLr: 0.01, weightDecayNorm: 0, biasLrFactor: 2, weightDecayBias: null });
    const { optimizer, groups } = buildOptimizer(cfg, model);
    expect(optimizer.paramGroups.map((x) => [x.lr, x.weightDecay, x.momentum])).toEqual(groups.map((x) => [x.lr, x.weightDecay, 0.9]));
    optimizer.dispose();
    model.dispose();
  });
});

describe('training loop', () => {
  it('resume: 2 + 2 steps equal 4 uninterrupted steps bit for bit (weights and momentum)', async () => {
    const a = await runTraining(join(dir, 'full'), 4);
    expect(a.r.iterations).toBe(4);
    const wa = await modelStateToHost(a.model);

    const b1 = await runTraining(join(dir, 'split'), 2);
    expect(b1.r.iterations).toBe(2);
    expect(readFileSync(join(dir, 'split', 'last_checkpoint'), 'utf8')).toBe('model_final.safetensors');
    const b2 = await runTraining(join(dir, 'split'), 4, { resume: true });
    expect(b2.r.startIter).toBe(2);
    expect(b2.r.iterations).toBe(2);
    expect(b2.logs.some((l) => l.includes('resumed from'))).toBe(true);
    const wb = await modelStateToHost(b2.model);
    expect([...wb.keys()]).toEqual([...wa.keys()]);
    for (const [k, t] of wa) expect(Buffer.from(wb.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    // the saved optimizer state of both final checkpoints is identical too
    const sa = await readSafetensors(join(dir, 'full', 'model_final.state.safetensors'));
    const sb = await readSafetensors(join(dir, 'split', 'model_final.state.safetensors'));
    expect([...sa.tensors.keys()].sort()).toEqual(['state.0.momentum_buffer', 'state.1.momentum_buffer', 'state.2.momentum_buffer', 'state.3.momentum_buffer']);
    for (const [k, t] of sa.tensors) expect(Buffer.from(sb.tensors.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    expect(JSON.parse(sb.metadata.training!)).toMatchObject({ iteration: 3, seed: 11 });
    // the weights actually moved
    const fresh = await modelStateToHost(new StandInModel());
    expect(Buffer.from(fresh.get('head.weight')!.data.buffer).equals(Buffer.from(wa.get('head.weight')!.data.buffer))).toBe(false);
    // periodic checkpoints as Detectron2 names them
    expect(readdirSync(join(dir, 'full')).filter((f) => f.endsWith('.safetensors')).sort()).toEqual([
      'model_0000001.safetensors', 'model_0000001.state.safetensors', 'model_0000003.safetensors', 'model_0000003.state.safetensors',
      'model_final.safetensors', 'model_final.state.safetensors',
    ]);
  });

  it('metrics.json: one sorted-key line per log period with losses, lr, time, eta', async () => {
    const lines = readFileSync(join(dir, 'full', 'metrics.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines.map((l) => l.iteration)).toEqual([1, 3]);
    for (const l of lines) {
      expect(Object.keys(l)).toEqual(['data_time', 'eta_seconds', 'iteration', 'loss_fcos_cls', 'loss_fcos_loc', 'loss_mask', 'lr', 'time', 'total_loss']);
      expect(Math.abs(l.total_loss! - (l.loss_fcos_cls! + l.loss_fcos_loc! + l.loss_mask!))).toBeLessThan(1e-3 * Math.max(1, l.total_loss!) + 1e-6);
      for (const v of Object.values(l)) expect(Number.isFinite(v)).toBe(true);
    }
    // lr: warmup factor 0.5 -> 0.75 at iter 1; iter 3 is past milestone 3 -> 0.1 * 0.1
    expect(lines[0]!.lr).toBeCloseTo(0.1 * 0.75, 12);
    expect(lines[1]!.lr).toBeCloseTo(0.1 * 0.1, 12);
    expect(lines[1]!.eta_seconds).toBe(0);
    // the resumed run appended to the same file
    const split = readFileSync(join(dir, 'split', 'metrics.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).iteration);
    expect(split).toEqual([1, 3]);
  });

  it('a NaN loss stops training with FloatingPointError naming the iteration; no checkpoint after it', async () => {
    const model = new StandInModel();
    model.nanAtCall = 2;
    const out = join(dir, 'nan');
    const err = await runTraining(out, 6, { model, logPeriod: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FloatingPointError);
    expect((err as FloatingPointError).iteration).toBe(2);
    expect((err as Error).message).toContain('Loss became infinite or NaN at iteration=2!');
    expect(readFileSync(join(out, 'last_checkpoint'), 'utf8')).toBe('model_0000001.safetensors');
    expect(existsSync(join(out, 'model_0000003.safetensors'))).toBe(false);
  });

  it('a failed checkpoint write leaves the previous checkpoint intact and no temp files', async () => {
    const out = join(dir, 'atomic');
    // make the rename of model_0000003.safetensors fail: a directory already has that name
    mkdirSync(join(out, 'model_0000003.safetensors'), { recursive: true });
    const err = await runTraining(out, 4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(readFileSync(join(out, 'last_checkpoint'), 'utf8')).toBe('model_0000001.safetensors');
    const prev = await readSafetensors(join(out, 'model_0000001.safetensors'));
    expect(prev.metadata.iteration).toBe('1');
    expect(prev.tensors.has('head.weight')).toBe(true);
    expect(readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // and resuming from it works
    rmSync(join(out, 'model_0000003.safetensors'), { recursive: true });
    const r = await runTraining(out, 4, { resume: true });
    expect(r.r.startIter).toBe(2);
  });

  it('MODEL.WEIGHTS fine-tuning: loads matching tensors, skips shape mismatches with a warning', async () => {
    const file = join(dir, 'pretrained.safetensors');
    await writeSafetensors(file, {
      'module.head.weight': hostTensor('F32', [3], Float32Array.from([1, 2, 3])),
      'head.bias': hostTensor('F32', [2], Float32Array.from([7, 8])), // class-count-like mismatch
      pixel_mean: hostTensor('F32', [3, 1, 1], Float32Array.from([1, 2, 3])),
    });
    const model = new StandInModel();
    const warnings: string[] = [];
    const r = await loadPretrainedWeights(file, model, (m) => warnings.push(m));
    expect(r.loaded).toBe(1);
    expect(r.skippedShape).toEqual(['head.bias']);
    expect(warnings.some((w) => w.includes("Skip loading parameter 'head.bias'"))).toBe(true);
    expect([...(await model.head.weight.data())]).toEqual([1, 2, 3]);
    expect([...(await model.head.bias.data())]).toEqual([0.05].map((v) => Math.fround(v)));
  });

  it('live tensors stay flat across iterations', async () => {
    const model = new StandInModel();
    const cfg = loadConfig(CONFIG, [...BASE, 'SOLVER.MAX_ITER', '3', 'SOLVER.CHECKPOINT_PERIOD', '0']);
    await train({ cfg, model, train: makeSet(), outputDir: join(dir, 'mem'), logPeriod: 1, readGray, log: () => {}, progressBar: false });
    const after3 = memory().liveTensors;
    const cfg6 = loadConfig(CONFIG, [...BASE, 'SOLVER.MAX_ITER', '9', 'SOLVER.CHECKPOINT_PERIOD', '0']);
    await train({ cfg: cfg6, model, train: makeSet(), outputDir: join(dir, 'mem2'), logPeriod: 1, readGray, log: () => {}, progressBar: false });
    // No growth: tensors left to the GC backstop by earlier tests may be collected in between, so
    // the count can only fall, never rise, when the loop frees what it creates.
    expect(memory().liveTensors).toBeLessThanOrEqual(after3);
  });

  it('--profile: one iteration profiled (a kernel table in the log, profile.json), the weights unchanged', async () => {
    const cfg = loadConfig(CONFIG, [...BASE, 'SOLVER.MAX_ITER', '4', 'SOLVER.CHECKPOINT_PERIOD', '0']);
    const plain = new StandInModel();
    await train({ cfg, model: plain, train: makeSet(), outputDir: join(dir, 'prof-a'), logPeriod: 2, readGray, log: () => {}, progressBar: false });
    const profiled = new StandInModel();
    const logs: string[] = [];
    await train({ cfg, model: profiled, train: makeSet(), outputDir: join(dir, 'prof-b'), logPeriod: 2, readGray, log: (l) => logs.push(l), progressBar: false, profile: {} });
    for (const [a, b] of plain.parameters().map((p, i) => [p, profiled.parameters()[i]!] as const)) expect([...(await b.data())]).toEqual([...(await a.data())]);
    const table = logs.find((l) => l.startsWith('profile of iteration 2'));
    expect(table).toMatch(/kernel\s+calls\s+device ms/);
    const report = JSON.parse(readFileSync(join(dir, 'prof-b', 'profile.json'), 'utf8'));
    expect(report.iteration).toBe(2);
    expect(report.dispatches).toBeGreaterThan(0);
    expect(report.kernels.reduce((n: number, k: { calls: number }) => n + k.calls, 0)).toBe(report.dispatches);
  });

  it('optimizer state dict round trip names torch-style keys', async () => {
    const model = new StandInModel();
    const cfg = loadConfig(CONFIG, BASE);
    const { optimizer } = buildOptimizer(cfg, model);
    const sd = await optimizerStateDict(optimizer);
    expect(sd.kind).toBe('SGD');
    expect(sd.tensors.size).toBe(0); // no step yet
    expect(sd.groups.reduce((n, g) => n + g.numParams, 0)).toBe(4);
    optimizer.dispose();
  });
});
