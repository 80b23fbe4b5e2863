// A step the GradScaler skips (inf/NaN gradients) does not count for AdamW: as torch's
// GradScaler.step, which then does not call optimizer.step, parameters, exp_avg, exp_avg_sq and the
// step count stay, and the next step's bias corrections use the unadvanced count (here the counts
// live on the GPU; nothing is read back inside a step). Checked against a float64 AdamW, for the
// multi-tensor and per-parameter kernels (one with amsgrad), with a parameter without gradient
// between two with; then the checkpointed state (step read back) and a resume that continues
// bit for bit.
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, fromArray, GradScaler, init, type Tensor } from '../../../engine';
import { loadOptimizerStateDict, optimizerStateDict, optimizerStateFromParts, optimizerStateMeta } from '../../../engine/optim/state';
import { expectClose, Rng, testSeed } from '../../util';

beforeAll(async () => {
  await init();
});

function param(values: ArrayLike<number>): Tensor {
  const p = fromArray(Float32Array.from(values), [values.length]).keep();
  p.requiresGrad = true;
  return p;
}

function setGrad(p: Tensor, values: ArrayLike<number>): void {
  p.grad?.dispose();
  p.grad = fromArray(Float32Array.from(values), [values.length]).keep();
}

const LR = 0.1;
const WD = 0.01;
const [B1, B2] = [0.9, 0.999];
const EPS = 1e-8;

/** torch.optim.AdamW in float64 for one parameter. */
class AdamW64 {
  m: Float64Array;
  v: Float64Array;
  vmax: Float64Array;
  step = 0;
  constructor(public p: Float64Array, readonly amsgrad: boolean) {
    this.m = new Float64Array(p.length);
    this.v = new Float64Array(p.length);
    this.vmax = new Float64Array(p.length);
  }
  update(g: ArrayLike<number>): void {
    const t = ++this.step;
    const bc1 = 1 - B1 ** t;
    const bc2 = 1 - B2 ** t;
    for (let i = 0; i < this.p.length; i++) {
      this.p[i]! *= 1 - LR * WD;
      this.m[i] = B1 * this.m[i]! + (1 - B1) * g[i]!;
      this.v[i] = B2 * this.v[i]! + (1 - B2) * g[i]! * g[i]!;
      this.vmax[i] = Math.max(this.vmax[i]!, this.v[i]!);
      const denom = Math.sqrt(this.amsgrad ? this.vmax[i]! : this.v[i]!) / Math.sqrt(bc2) + EPS;
      this.p[i]! -= (LR / bc1) * (this.m[i]! / denom);
    }
  }
}

const TOL = { atol: 2e-6, rtol: 2e-5 };

describe('AdamW under a GradScaler: skipped steps do not advance the step count', () => {
  for (const [name, foreach, amsgrad] of [['multi-tensor', true, false], ['per parameter', false, false], ['multi-tensor, amsgrad', true, true]] as const) {
    it(`${name}: skip leaves everything, the next steps follow float64 AdamW with the unadvanced count; checkpoint round trip`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const a0 = Float64Array.from(rng.uniformArray(7, -1, 1), Math.fround);
      const b0 = Float64Array.from(rng.uniformArray(3, -1, 1), Math.fround);
      const grads = Array.from({ length: 4 }, () => [Float64Array.from(rng.uniformArray(7, -1, 1), Math.fround), Float64Array.from(rng.uniformArray(3, -1, 1), Math.fround)]);
      const a = param(a0);
      const c = param([5]); // never has a gradient: no state, and the runs of step indices split
      const b = param(b0);
      const opt = new AdamW([a, c, b], { lr: LR, weightDecay: WD, betas: [B1, B2], eps: EPS, amsgrad, foreach });
      const scaler = new GradScaler({ initScale: 1 });
      const refA = new AdamW64(Float64Array.from(a0), amsgrad);
      const refB = new AdamW64(Float64Array.from(b0), amsgrad);
      // Gradients as backward of the scaled loss gives them: times the scale, which halves on the
      // skipped step (powers of two: unscaling is exact).
      let scale = 1;
      const stepWith = (ga: ArrayLike<number>, gb: ArrayLike<number>) => {
        setGrad(a, Array.from(ga, (v) => v * scale));
        setGrad(b, Array.from(gb, (v) => v * scale));
        scaler.step(opt);
        scaler.update();
      };
      // Step 1, clean.
      stepWith(grads[0]![0]!, grads[0]![1]!);
      refA.update(grads[0]![0]!);
      refB.update(grads[0]![1]!);
      const snapshot = async () => [a, b].map(async (p) => {
        const s = opt.stateOf(p)!;
        return [await p.data(), await s.expAvg.data(), await s.expAvgSq.data()].map((x) => Array.from(x));
      });
      const before = await Promise.all(await snapshot());
      // Step 2: an inf in b's gradient skips the whole step.
      stepWith(grads[1]![0]!, [Infinity, 0, 0]);
      scale = 0.5;
      expect(await Promise.all(await snapshot())).toEqual(before);
      await opt.syncSteps();
      expect([opt.stateOf(a)!.step, opt.stateOf(b)!.step]).toEqual([1, 1]);
      // Steps 3 and 4, clean: float64 AdamW's steps 2 and 3.
      for (const k of [2, 3]) {
        stepWith(grads[k]![0]!, grads[k]![1]!);
        refA.update(grads[k]![0]!);
        refB.update(grads[k]![1]!);
      }
      expectClose(await a.data(), refA.p, { ...TOL, what: `${name} a (seed ${seed})` });
      expectClose(await b.data(), refB.p, { ...TOL, what: `${name} b (seed ${seed})` });
      expectClose(await opt.stateOf(a)!.expAvg.data(), refA.m, { ...TOL, what: `${name} exp_avg` });
      expectClose(await opt.stateOf(b)!.expAvgSq.data(), refB.v, { ...TOL, what: `${name} exp_avg_sq` });
      expect((await scaler.read()).skippedSteps).toBe(1);

      // Checkpoint: the step read back; a resumed optimizer over copies continues bit for bit.
      const sd = optimizerStateDict(opt);
      const saved = await sd;
      expect(saved.steps).toEqual({ 0: 3, 2: 3 });
      const restored = optimizerStateFromParts(optimizerStateMeta(saved), saved.tensors);
      const a2 = param(await a.data());
      const c2 = param([5]);
      const b2 = param(await b.data());
      const opt2 = new AdamW([a2, c2, b2], { lr: LR, amsgrad, foreach });
      loadOptimizerStateDict(opt2, restored);
      expect(opt2.stateOf(a2)!.step).toBe(3);
      const scaler2 = new GradScaler({ initScale: 1 });
      for (const [o, s, pa, pb] of [[opt, scaler, a, b], [opt2, scaler2, a2, b2]] as const) {
        const f = o === opt ? scale : 1;
        setGrad(pa, Array.from(grads[0]![0]!, (v) => v * f));
        setGrad(pb, Array.from(grads[0]![1]!, (v) => v * f));
        s.step(o);
        s.update();
      }
      expect(Array.from(await a2.data())).toEqual(Array.from(await a.data()));
      expect(Array.from(await b2.data())).toEqual(Array.from(await b.data()));
      expect((await optimizerStateDict(opt2)).steps).toEqual({ 0: 4, 2: 4 });
      // And without the scaler afterwards the count keeps advancing on the device.
      setGrad(a, grads[1]![0]!);
      setGrad(b, grads[1]![1]!);
      opt.step();
      expect((await optimizerStateDict(opt)).steps).toEqual({ 0: 5, 2: 5 });
      for (const o of [opt, opt2]) o.dispose();
      for (const s of [scaler, scaler2]) s.dispose();
    });
  }
});
