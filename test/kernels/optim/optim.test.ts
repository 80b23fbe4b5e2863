// Optimizers against float64 TypeScript transcriptions of PyTorch 1.13's single-tensor updates,
// over several steps with every option (momentum, dampening, weight decay, Nesterov, maximize,
// AdamW's betas/eps/amsgrad), parameter groups with their own hyper-parameters, an lr changed
// between steps (uniforms, no recompilation), and gradient clipping (global norm on the GPU,
// value clipping). Nothing in a step or a clip may read back: the runtime's readback counter is
// checked.
import { beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init, memory, rt, type Tensor, transpose, zeros } from '../../../engine';
import { AdamW, type AdamWOptions } from '../../../engine/optim/adamw';
import { clipGradNorm, clipGradValue, gradNorm } from '../../../engine/optim/clip';
import { SGD, type SgdOptions } from '../../../engine/optim/sgd';
import { NORM_CHUNK } from '../../../kernels/optim/clip';
import { expectClose, Rng, testSeed } from '../../util';

beforeAll(async () => {
  await init();
});

// ---- float64 references (PyTorch 1.13, torch/optim/sgd.py and adamw.py, _single_tensor_*) -----

interface SgdRefState {
  buf: Float64Array | null;
}
function sgdRef(p: Float64Array, grad: Float64Array, s: SgdRefState, o: SgdOptions): void {
  const d = Float64Array.from(grad, (g) => (o.maximize ? -g : g));
  if (o.weightDecay !== 0) for (let i = 0; i < d.length; i++) d[i]! += o.weightDecay * p[i]!;
  let step: Float64Array = d;
  if (o.momentum !== 0) {
    if (!s.buf) s.buf = Float64Array.from(d);
    else for (let i = 0; i < d.length; i++) s.buf[i] = s.buf[i]! * o.momentum + (1 - o.dampening) * d[i]!;
    step = o.nesterov ? Float64Array.from(d, (v, i) => v + o.momentum * s.buf![i]!) : s.buf;
  }
  for (let i = 0; i < p.length; i++) p[i]! -= o.lr * step[i]!;
}

interface AdamRefState {
  step: number;
  m: Float64Array;
  v: Float64Array;
  vmax: Float64Array;
}
function adamwRef(p: Float64Array, grad: Float64Array, s: AdamRefState, o: AdamWOptions): void {
  const [b1, b2] = o.betas;
  s.step++;
  const bc1 = 1 - b1 ** s.step;
  const bc2 = 1 - b2 ** s.step;
  for (let i = 0; i < p.length; i++) {
    const g = o.maximize ? -grad[i]! : grad[i]!;
    p[i]! *= 1 - o.lr * o.weightDecay;
    s.m[i] = s.m[i]! * b1 + (1 - b1) * g;
    s.v[i] = s.v[i]! * b2 + (1 - b2) * g * g;
    let v = s.v[i]!;
    if (o.amsgrad) v = s.vmax[i] = Math.max(s.vmax[i]!, v);
    const denom = Math.sqrt(v) / Math.sqrt(bc2) + o.eps;
    p[i]! -= (o.lr / bc1) * (s.m[i]! / denom);
  }
}

// ---- helpers ------------------------------------------------------------------------------------

const SHAPES = [[7, 5], [13], [3, 4, 5], [1]];

function makeParams(rng: Rng): { gpu: Tensor[]; ref: Float64Array[] } {
  const gpu: Tensor[] = [];
  const ref: Float64Array[] = [];
  for (const shape of SHAPES) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = Float32Array.from(rng.uniformArray(n, -1, 1));
    const t = fromArray(v, shape);
    t.requiresGrad = true;
    gpu.push(t);
    ref.push(Float64Array.from(v));
  }
  return { gpu, ref };
}

/** Random f32 gradients for each parameter; as float64 for the reference. */
function setGrads(rng: Rng, params: Tensor[], scale = 1): Float64Array[] {
  return params.map((p) => {
    const g = Float32Array.from(rng.uniformArray(p.numel, -scale, scale));
    p.grad?.dispose();
    p.grad = fromArray(g, p.shape);
    return Float64Array.from(g);
  });
}

function readbacks(): number {
  return rt().stats().readbacks;
}

function disposeAll(ts: Tensor[]): void {
  for (const t of ts) {
    t.grad?.dispose();
    t.dispose();
  }
}

const STEPS = 5;
/** lr per step: changes every step, as a scheduler would (lr is a uniform, not a constant). */
const lrAt = (base: number, step: number) => base * (1 - 0.1 * step);

// ---- SGD ---------------------------------------------------------------------------------------

describe('SGD', () => {
  const cases: Partial<SgdOptions>[] = [
    { lr: 0.1 },
    { lr: 0.05, momentum: 0.9 },
    { lr: 0.05, momentum: 0.9, dampening: 0.3, weightDecay: 1e-2 },
    { lr: 0.02, momentum: 0.8, nesterov: true, weightDecay: 1e-3 },
    { lr: 0.02, momentum: 0.5, weightDecay: 0.05, maximize: true },
  ];
  for (const c of cases) {
    it(`matches the float64 reference over ${STEPS} steps: ${JSON.stringify(c)}`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const { gpu, ref } = makeParams(rng);
      const opts: SgdOptions = { lr: c.lr!, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, foreach: true, ...c };
      const opt = new SGD(gpu, opts);
      const states: SgdRefState[] = ref.map(() => ({ buf: null }));
      const r0 = readbacks();
      for (let step = 0; step < STEPS; step++) {
        const grads = setGrads(rng, gpu);
        opt.paramGroups[0]!.lr = lrAt(opts.lr, step);
        opt.step();
        ref.forEach((p, i) => sgdRef(p, grads[i]!, states[i]!, { ...opts, lr: lrAt(opts.lr, step) }));
      }
      expect(readbacks(), 'an optimizer step read back from the GPU').toBe(r0);
      for (let i = 0; i < gpu.length; i++) {
        expectClose(await gpu[i]!.data(), ref[i]!, { atol: 2e-6, rtol: 1e-5, what: `param ${i} [${SHAPES[i]}] (seed ${seed})`, shape: SHAPES[i] });
        if (opts.momentum) expectClose(await opt.stateOf(gpu[i]!)!.momentumBuffer!.data(), states[i]!.buf!, { atol: 2e-6, rtol: 1e-5, what: `momentum ${i} (seed ${seed})` });
      }
      opt.zeroGrad();
      expect(gpu.every((p) => p.grad === null)).toBe(true);
      opt.dispose();
      disposeAll(gpu);
    });
  }

  it('parameter groups use their own lr, weight decay and momentum (Detectron2: no decay on norms, bias lr factor)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const { gpu, ref } = makeParams(rng);
    const defaults: SgdOptions = { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 1e-2, nesterov: false, maximize: false, foreach: true };
    const groupOpts: SgdOptions[] = [
      defaults,
      { ...defaults, weightDecay: 0 },
      { ...defaults, lr: 0.1, momentum: 0.5, nesterov: true },
    ];
    const opt = new SGD(
      [
        { params: [gpu[0]!, gpu[3]!] },
        { params: [gpu[1]!], weightDecay: 0 },
        { params: [gpu[2]!], lr: 0.1, momentum: 0.5, nesterov: true },
      ],
      defaults,
    );
    const groupOf = [0, 1, 2, 0];
    expect(opt.paramGroups.map((g) => [g.lr, g.initialLr, g.weightDecay, g.momentum, g.nesterov])).toEqual([
      [0.05, 0.05, 1e-2, 0.9, false],
      [0.05, 0.05, 0, 0.9, false],
      [0.1, 0.1, 1e-2, 0.5, true],
    ]);
    const states: SgdRefState[] = ref.map(() => ({ buf: null }));
    for (let step = 0; step < 3; step++) {
      const grads = setGrads(rng, gpu);
      opt.step();
      ref.forEach((p, i) => sgdRef(p, grads[i]!, states[i]!, groupOpts[groupOf[i]!]!));
    }
    for (let i = 0; i < gpu.length; i++) expectClose(await gpu[i]!.data(), ref[i]!, { atol: 2e-6, rtol: 1e-5, what: `param ${i} (seed ${seed})` });
    opt.dispose();
    disposeAll(gpu);
  });

  it('skips parameters without a gradient and reads non-contiguous gradients correctly', async () => {
    const a = fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = fromArray([1, 1]);
    a.requiresGrad = b.requiresGrad = true;
    const opt = new SGD([a, b], { lr: 0.5 });
    const gT = fromArray([10, 40, 20, 50, 30, 60], [3, 2]);
    a.grad = transpose(gT, 0, 1); // [[10,20,30],[40,50,60]] as a strided view
    opt.step();
    expect(await a.toArray()).toEqual([-4, -8, -12, -16, -20, -24]);
    expect(await b.toArray()).toEqual([1, 1]);
    expect(opt.stateOf(b)).toBeUndefined();
    gT.dispose();
    opt.dispose();
    disposeAll([a, b]);
  });

  it('rejects bad options and parameters with clear errors', () => {
    const p = zeros([2]);
    p.requiresGrad = true;
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow(/Nesterov momentum requires a momentum and zero dampening/);
    expect(() => new SGD([p], { lr: -1 })).toThrow(/invalid learning rate -1/);
    expect(() => new SGD([{ params: [p] }, { params: [p] }], { lr: 0.1 })).toThrow(/appears in more than one group/);
    const q = zeros([2]);
    expect(() => new SGD([q], { lr: 0.1 })).toThrow(/must be a leaf tensor with requiresGrad/);
    const opt = new SGD([p], { lr: 0.1 });
    p.grad = zeros([3]);
    expect(() => opt.step()).toThrow(/gradient of shape \[3\] for parameter .*of shape \[2\]/);
    disposeAll([p, q]);
  });
});

// ---- AdamW -------------------------------------------------------------------------------------

describe('AdamW', () => {
  const base: AdamWOptions = { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false, foreach: true };
  const cases: Partial<AdamWOptions>[] = [
    {},
    { amsgrad: true },
    { lr: 3e-2, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 },
    { weightDecay: 0, maximize: true, amsgrad: true },
  ];
  for (const c of cases) {
    it(`matches the float64 reference over ${STEPS} steps: ${JSON.stringify(c)}`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const { gpu, ref } = makeParams(rng);
      const opts = { ...base, ...c };
      const opt = new AdamW(gpu, c);
      const states: AdamRefState[] = ref.map((p) => ({ step: 0, m: new Float64Array(p.length), v: new Float64Array(p.length), vmax: new Float64Array(p.length) }));
      const r0 = readbacks();
      for (let step = 0; step < STEPS; step++) {
        // Decreasing gradient scale: amsgrad's running max then differs from v.
        const grads = setGrads(rng, gpu, 1 / (1 + step));
        opt.paramGroups[0]!.lr = lrAt(opts.lr, step);
        opt.step();
        ref.forEach((p, i) => adamwRef(p, grads[i]!, states[i]!, { ...opts, lr: lrAt(opts.lr, step) }));
      }
      expect(readbacks(), 'an optimizer step read back from the GPU').toBe(r0);
      for (let i = 0; i < gpu.length; i++) {
        expectClose(await gpu[i]!.data(), ref[i]!, { atol: 2e-6, rtol: 1e-5, what: `param ${i} [${SHAPES[i]}] (seed ${seed})`, shape: SHAPES[i] });
        const s = opt.stateOf(gpu[i]!)!;
        expect(s.step).toBe(STEPS);
        expectClose(await s.expAvg.data(), states[i]!.m, { atol: 1e-7, rtol: 1e-5, what: `exp_avg ${i} (seed ${seed})` });
        expectClose(await s.expAvgSq.data(), states[i]!.v, { atol: 1e-9, rtol: 1e-5, what: `exp_avg_sq ${i} (seed ${seed})` });
        if (opts.amsgrad) expectClose(await s.maxExpAvgSq!.data(), states[i]!.vmax, { atol: 1e-9, rtol: 1e-5, what: `max_exp_avg_sq ${i} (seed ${seed})` });
      }
      opt.dispose();
      disposeAll(gpu);
    });
  }

  it('parameter groups with zero decay and their own lr', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const { gpu, ref } = makeParams(rng);
    const g0: AdamWOptions = { ...base, weightDecay: 0.05 };
    const g1: AdamWOptions = { ...g0, weightDecay: 0, lr: 2e-2 };
    const opt = new AdamW([{ params: [gpu[0]!, gpu[2]!] }, { params: [gpu[1]!, gpu[3]!], weightDecay: 0, lr: 2e-2 }], { lr: base.lr, weightDecay: 0.05 });
    const groupOpts = [g0, g1, g0, g1];
    const states: AdamRefState[] = ref.map((p) => ({ step: 0, m: new Float64Array(p.length), v: new Float64Array(p.length), vmax: new Float64Array(p.length) }));
    for (let step = 0; step < 3; step++) {
      const grads = setGrads(rng, gpu);
      opt.step();
      ref.forEach((p, i) => adamwRef(p, grads[i]!, states[i]!, groupOpts[i]!));
    }
    for (let i = 0; i < gpu.length; i++) expectClose(await gpu[i]!.data(), ref[i]!, { atol: 2e-6, rtol: 1e-5, what: `param ${i} (seed ${seed})` });
    opt.dispose();
    disposeAll(gpu);
  });

  it('rejects bad betas', () => {
    const p = zeros([2]);
    p.requiresGrad = true;
    expect(() => new AdamW([p], { betas: [1, 0.999] })).toThrow(/invalid beta1 1/);
    p.dispose();
  });
});

// ---- clipping ----------------------------------------------------------------------------------

function normRef(grads: Float64Array[], p: number): number {
  if (p === Infinity) return Math.max(...grads.map((g) => Math.max(...Array.from(g, Math.abs))));
  let s = 0;
  for (const g of grads) for (const v of g) s += Math.abs(v) ** p;
  return s ** (1 / p);
}

describe('gradient clipping', () => {
  // One gradient spans several partial-sum chunks.
  const shapes = [[7, 5], [13], [NORM_CHUNK * 2 + 77], [1]];
  for (const normType of [2, Infinity, 3]) {
    for (const clipping of [true, false]) {
      it(`clipGradNorm, norm ${normType}, ${clipping ? 'max below the norm (scales)' : 'max above the norm (unchanged)'}`, async () => {
        const seed = testSeed();
        const rng = new Rng(seed);
        const params = shapes.map((s) => {
          const t = zeros(s);
          t.requiresGrad = true;
          return t;
        });
        const grads = setGrads(rng, params);
        const norm = normRef(grads, normType);
        const maxNorm = clipping ? norm * 0.37 : norm * 1.5;
        const r0 = readbacks();
        const before = memory().liveTensors;
        const normT = clipGradNorm(params, maxNorm, normType);
        expect(readbacks(), 'clipGradNorm read back from the GPU').toBe(r0);
        expect(memory().liveTensors).toBe(before + 1); // only the returned norm
        const coef = Math.min(1, maxNorm / (norm + 1e-6));
        expectClose([await normT.item()], [norm], { atol: 1e-6, rtol: 2e-5, what: `norm (seed ${seed})` });
        for (let i = 0; i < params.length; i++) {
          expectClose(await params[i]!.grad!.data(), Array.from(grads[i]!, (g) => g * coef), { atol: 1e-7, rtol: 2e-5, what: `clipped grad ${i} (seed ${seed})` });
        }
        normT.dispose();
        disposeAll(params);
      });
    }
  }

  it('gradNorm measures without clipping; parameters without grads are ignored', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const params = [zeros([9]), zeros([4]), zeros([3])];
    for (const p of params) p.requiresGrad = true;
    const grads = setGrads(rng, params.slice(0, 2), 5);
    const n = gradNorm(params);
    expectClose([await n.item()], [normRef(grads, 2)], { rtol: 2e-6, what: `norm (seed ${seed})` });
    expectClose(await params[0]!.grad!.data(), grads[0]!, { atol: 0, rtol: 0, what: 'unchanged grad' });
    n.dispose();
    disposeAll(params);
  });

  it('clipGradValue clamps every gradient in place', async () => {
    const p = zeros([6]);
    p.requiresGrad = true;
    p.grad = fromArray([-3, -0.5, 0, 0.25, 2, 0.75]);
    clipGradValue([p], 0.5);
    expect(await p.grad.toArray()).toEqual([-0.5, -0.5, 0, 0.25, 0.5, 0.5]);
    expect(() => clipGradValue([p], -1)).toThrow(/clipValue must be >= 0/);
    disposeAll([p]);
  });
});
