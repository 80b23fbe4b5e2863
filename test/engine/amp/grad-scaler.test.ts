// GradScaler against a float64 simulation of torch.cuda.amp.GradScaler's rules: the loss scaled,
// gradients unscaled in place, a step with inf/NaN gradients skipped by every optimizer kernel
// (SGD and AdamW, one kernel per parameter and multi-tensor) with the scale backed off, growth after
// growthInterval clean steps, the skipped-step count, and the state dict round trip. No value is
// read back between the steps.
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, backward, fromArray, GradScaler, init, mul, SGD, sum, type Tensor } from '../../../engine';
import { expectClose } from '../../util';

beforeAll(async () => {
  await init();
});

function param(values: number[]): Tensor {
  const p = fromArray(values, [values.length]).keep();
  p.requiresGrad = true;
  return p;
}

/** Set p.grad to `values` (as a fresh gradient). */
function setGrad(p: Tensor, values: number[]): void {
  p.grad?.dispose();
  p.grad = fromArray(values, [values.length]).keep();
}

/** torch's rules in float64 (the scale stays a power of two here, so f32 agrees exactly). */
class TorchScalerModel {
  tracker = 0;
  skipped = 0;
  constructor(public scale: number, readonly growth: number, readonly backoff: number, readonly interval: number) {}
  update(foundInf: boolean): void {
    if (foundInf) {
      this.scale *= this.backoff;
      this.tracker = 0;
      this.skipped++;
    } else if (++this.tracker === this.interval) {
      this.scale *= this.growth;
      this.tracker = 0;
    }
  }
}

describe('GradScaler', () => {
  it('scales the loss by 2^16 by default, and gradients flow through the scale', async () => {
    const scaler = new GradScaler();
    const x = param([1.5, -2]);
    const loss = sum(mul(x, x));
    const scaled = scaler.scale(loss);
    expect(await scaled.item()).toBe(6.25 * 65536);
    backward(scaled);
    expect(await x.grad!.toArray()).toEqual([3 * 65536, -4 * 65536]);
    expect(await scaler.read()).toEqual({ scale: 65536, growthTracker: 0, skippedSteps: 0 });
  });

  for (const [name, make] of [
    ['SGD momentum, multi-tensor', (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9 })],
    ['SGD momentum, per parameter', (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9, foreach: false })],
    ['AdamW, multi-tensor', (ps: Tensor[]) => new AdamW(ps, { lr: 0.1 })],
    ['AdamW, per parameter', (ps: Tensor[]) => new AdamW(ps, { lr: 0.1, foreach: false })],
  ] as const) {
    it(`${name}: an inf or NaN gradient skips the whole step and halves the scale; clean steps update from unscaled gradients`, async () => {
      const scaler = new GradScaler({ initScale: 1024 });
      const a = param([1, 2, 3]);
      const b = param([-1, 0.5]);
      const opt = make([a, b]);
      // Step 1: b's gradient has an inf, a's is fine: nothing may change.
      setGrad(a, [1024, 2048, -1024]);
      setGrad(b, [Infinity, 0]);
      scaler.step(opt);
      scaler.update();
      // Step 2: a NaN.
      setGrad(a, [NaN, 0, 0]);
      setGrad(b, [1, 1]);
      scaler.step(opt);
      scaler.update();
      expect(await a.toArray()).toEqual([1, 2, 3]);
      expect(await b.toArray()).toEqual([-1, 0.5]);
      expect(await scaler.read()).toEqual({ scale: 256, growthTracker: 0, skippedSteps: 2 });
      // Step 3: clean gradients scaled by 256 reach the optimizer as [1, 2, -1] and [0.5, -0.25].
      setGrad(a, [256, 512, -256]);
      setGrad(b, [128, -64]);
      scaler.unscale(opt);
      expect(await a.grad!.toArray()).toEqual([1, 2, -1]);
      scaler.step(opt);
      scaler.update();
      const ref = make([param([1, 2, 3]), param([-1, 0.5])]);
      const [ra, rb] = ref.paramGroups[0]!.params as [Tensor, Tensor];
      setGrad(ra, [1, 2, -1]);
      setGrad(rb, [0.5, -0.25]);
      ref.step();
      // SGD momentum: the skipped first steps left a zero buffer, so buf = 0·0.9 + d = d, as
      // torch's first step (dampening 0). AdamW: the skipped steps did not count, so this is its
      // first step (bias corrections in f32 on the device instead of float64 on the host).
      const tol = opt instanceof AdamW ? { atol: 1e-6, rtol: 1e-5 } : { atol: 0, rtol: 0 };
      expectClose(await a.data(), Array.from(await ra.data()), { ...tol, what: `${name} a` });
      expectClose(await b.data(), Array.from(await rb.data()), { ...tol, what: `${name} b` });
      expect((await scaler.read()).skippedSteps).toBe(2);
    });
  }

  it('follows torch\'s growth/backoff rules step by step (float64 simulation, growth interval 3)', async () => {
    const scaler = new GradScaler({ initScale: 2 ** 10, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3 });
    const model = new TorchScalerModel(2 ** 10, 2, 0.5, 3);
    const p = param([0.5, 0.25]);
    const opt = new SGD([p], { lr: 0 });
    // A fixed pattern of clean (.) and overflowing (!) steps.
    const pattern = '...!.....!!......!.';
    for (const c of pattern) {
      setGrad(p, c === '!' ? [1, -Infinity] : [1, 2]);
      scaler.step(opt);
      scaler.update();
      model.update(c === '!');
    }
    expect(await scaler.read()).toEqual({ scale: model.scale, growthTracker: model.tracker, skippedSteps: model.skipped });
  });

  it('keeps the scale when growing would overflow f32', async () => {
    const scaler = new GradScaler({ initScale: 2 ** 127, growthInterval: 1 });
    const p = param([1]);
    const opt = new SGD([p], { lr: 0 });
    setGrad(p, [0]);
    scaler.step(opt);
    scaler.update();
    expect((await scaler.read()).scale).toBe(2 ** 127);
  });

  it('state dict round trip (torch\'s keys) and clear errors', async () => {
    const s = new GradScaler({ initScale: 8, growthInterval: 5 });
    s.loadStateDict({ scale: 512, growth_factor: 2, backoff_factor: 0.5, growth_interval: 5, _growth_tracker: 3 });
    expect(await s.stateDict()).toEqual({ scale: 512, growth_factor: 2, backoff_factor: 0.5, growth_interval: 5, _growth_tracker: 3 });
    expect(() => new GradScaler({ backoffFactor: 2 })).toThrow(/backoffFactor/);
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1 });
    setGrad(p, [1]);
    s.unscale(opt);
    expect(() => s.unscale(opt)).toThrow(/already called/);
  });
});
