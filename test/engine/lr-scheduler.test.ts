// LR schedules against hand-computed values (Detectron2's WarmupMultiStepLR / WarmupCosineLR and
// torch's MultiStepLR / CosineAnnealingLR), applied to every parameter group's own initial lr.
import { beforeAll, describe, expect, it } from 'vitest';
import { init, type Tensor, zeros } from '../../engine';
import { CosineAnnealingLR, MultiStepLR, warmupFactorAt, WarmupCosineLR, WarmupMultiStepLR } from '../../engine/optim/lr-scheduler';
import { SGD } from '../../engine/optim/sgd';

let params: Tensor[] = [];
beforeAll(async () => {
  await init();
  params = [zeros([2]), zeros([3])];
  for (const p of params) p.requiresGrad = true;
});

/** SGD with Detectron2-style groups: base lr 0.02 and a bias group with lr factor 2. */
const optimizer = () => new SGD([{ params: [params[0]!] }, { params: [params[1]!], lr: 0.04, weightDecay: 0 }], { lr: 0.02, momentum: 0.9, weightDecay: 1e-4 });

/** Run `n` iterations and collect group 0's lr at each (before its step, as training uses it). */
function trace(s: { getLastLr(): number[]; step(): void }, n: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    out.push(s.getLastLr());
    s.step();
  }
  return out;
}

function expectLrs(actual: number[][], expected: number[][]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) => row.forEach((v, j) => expect(v, `iteration ${i}, group ${j}`).toBeCloseTo(expected[i]![j]!, 12)));
}

describe('lr schedulers', () => {
  it('warmup factor: linear and constant', () => {
    expect(warmupFactorAt('linear', 0, 10, 0.001)).toBe(0.001);
    expect(warmupFactorAt('linear', 5, 10, 0.001)).toBeCloseTo(0.001 * 0.5 + 0.5, 15);
    expect(warmupFactorAt('linear', 10, 10, 0.001)).toBe(1);
    expect(warmupFactorAt('constant', 3, 10, 0.25)).toBe(0.25);
    expect(warmupFactorAt('constant', 10, 10, 0.25)).toBe(1);
    expect(() => warmupFactorAt('cubic' as 'linear', 0, 10, 0.1)).toThrow(/unknown warmup method 'cubic'/);
  });

  it('WarmupMultiStepLR, linear warmup over 4 iterations, steps at 6 and 8, gamma 0.1', () => {
    const opt = optimizer();
    const s = new WarmupMultiStepLR(opt, { steps: [6, 8], gamma: 0.1, warmupFactor: 0.2, warmupIters: 4, warmupMethod: 'linear' });
    // factor(it) = (0.2·(1 - it/4) + it/4) for it < 4, then 1, ×0.1 from 6, ×0.01 from 8
    const f = [0.2, 0.4, 0.6, 0.8, 1, 1, 0.1, 0.1, 0.01, 0.01];
    expectLrs(trace(s, 10), f.map((x) => [0.02 * x, 0.04 * x]));
    expect(opt.paramGroups[0]!.initialLr).toBe(0.02); // the base stays put
  });

  it('WarmupMultiStepLR, constant warmup; a milestone inside the warmup multiplies too', () => {
    const s = new WarmupMultiStepLR(optimizer(), { steps: [2, 5], gamma: 0.5, warmupFactor: 0.1, warmupIters: 3, warmupMethod: 'constant' });
    const f = [0.1, 0.1, 0.05, 0.5, 0.5, 0.25, 0.25];
    expectLrs(trace(s, 7), f.map((x) => [0.02 * x, 0.04 * x]));
  });

  it('WarmupMultiStepLR rejects unordered milestones', () => {
    expect(() => new WarmupMultiStepLR(optimizer(), { steps: [8, 6] })).toThrow(/milestones should be a list of increasing integers/);
  });

  it('WarmupCosineLR: warmup factor times half a cosine over maxIters', () => {
    const s = new WarmupCosineLR(optimizer(), { maxIters: 8, warmupFactor: 0.5, warmupIters: 2 });
    const cos = (it: number) => 0.5 * (1 + Math.cos((Math.PI * it) / 8));
    const warm = [0.5, 0.75];
    const f = Array.from({ length: 9 }, (_, it) => (it < 2 ? warm[it]! : 1) * cos(it));
    expectLrs(trace(s, 9), f.map((x) => [0.02 * x, 0.04 * x]));
    expect(f[8]).toBeCloseTo(0, 15);
    expect(f[4]).toBeCloseTo(0.5, 15);
  });

  it('MultiStepLR (no warmup)', () => {
    const s = new MultiStepLR(optimizer(), { milestones: [1, 3], gamma: 0.5 });
    expectLrs(trace(s, 5), [1, 0.5, 0.5, 0.25, 0.25].map((x) => [0.02 * x, 0.04 * x]));
  });

  it('CosineAnnealingLR with etaMin (closed form)', () => {
    const s = new CosineAnnealingLR(optimizer(), { tMax: 4, etaMin: 0.001 });
    const at = (base: number, it: number) => 0.001 + ((base - 0.001) * (1 + Math.cos((Math.PI * it) / 4))) / 2;
    expectLrs(trace(s, 5), [0, 1, 2, 3, 4].map((it) => [at(0.02, it), at(0.04, it)]));
    expect(s.getLastLr()[0]).toBeCloseTo(at(0.02, 5), 12);
  });

  it('startIter resumes mid-schedule', () => {
    const s = new WarmupMultiStepLR(optimizer(), { steps: [6], warmupIters: 4, warmupFactor: 0.2, startIter: 7 });
    expect(s.lastIter).toBe(7);
    expectLrs([s.getLastLr()], [[0.002, 0.004]]);
  });
});
