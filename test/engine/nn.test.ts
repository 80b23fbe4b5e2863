// nn: Module trees (arbitrary child names, registration order, train/eval), state dicts (round
// trips, host-tensor dtype conversion, strict and non-strict error reporting), Linear (init
// bounds, forward and backward vs a float64 reference whose gradient is checked by finite
// differences) and the initialisers (statistics, determinism, fans and gains).
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init, memory, mean, noGrad, scope, square, sub, sum, type Tensor, zeros } from '../../engine';
import { f32ToF16 } from '../../runtime/dtype';
import { Linear } from '../../engine/nn/linear';
import { Module } from '../../engine/nn/module';
import {
  calculateGain,
  c2MsraFill,
  constant_,
  fanInAndFanOut,
  kaimingNormal_,
  kaimingUniform_,
  manualSeed,
  normal_,
  uniform_,
  xavierNormal_,
  xavierUniform_,
} from '../../engine/nn/init';
import { expectClose, numericGrad, Rng, testSeed } from '../util';

beforeAll(async () => {
  await init();
});

class Leaf extends Module {
  w: Tensor;
  runningMean: Tensor;
  constructor(n: number) {
    super();
    this.w = this.registerParameter('weight', zeros([n, 2]));
    this.registerParameter('bias', zeros([n]));
    this.runningMean = this.registerBuffer('running_mean', zeros([n]));
    this.registerBuffer('scratch', zeros([3]), { persistent: false });
  }
}

/** backbone.bottom_up.stem.stem_1/conv.{weight,bias,running_mean} as in Detectron2's VoVNet. */
function detectronLike(): Module {
  const root = new Module();
  const backbone = root.registerModule('backbone', new Module());
  const bottomUp = backbone.registerModule('bottom_up', new Module());
  const stem = bottomUp.registerModule('stem', new Module());
  stem.registerModule('stem_1/conv', new Leaf(4));
  stem.registerModule('stem_2/conv', new Leaf(3));
  root.registerModule('head', new Leaf(2));
  return root;
}

async function values(t: Tensor): Promise<number[]> {
  return t.toArray();
}

describe('Module', () => {
  it('expresses Detectron2 keys with "/" in child names, in registration order', () => {
    const m = detectronLike();
    expect([...m.stateDict().keys()]).toEqual([
      'backbone.bottom_up.stem.stem_1/conv.weight',
      'backbone.bottom_up.stem.stem_1/conv.bias',
      'backbone.bottom_up.stem.stem_1/conv.running_mean',
      'backbone.bottom_up.stem.stem_2/conv.weight',
      'backbone.bottom_up.stem.stem_2/conv.bias',
      'backbone.bottom_up.stem.stem_2/conv.running_mean',
      'head.weight',
      'head.bias',
      'head.running_mean',
    ]);
    expect(m.namedParameters().map(([k]) => k)).toEqual([
      'backbone.bottom_up.stem.stem_1/conv.weight',
      'backbone.bottom_up.stem.stem_1/conv.bias',
      'backbone.bottom_up.stem.stem_2/conv.weight',
      'backbone.bottom_up.stem.stem_2/conv.bias',
      'head.weight',
      'head.bias',
    ]);
    // Non-persistent buffers are buffers, but not in the state dict.
    expect(m.namedBuffers().map(([k]) => k)).toContain('head.scratch');
    expect([...m.stateDict().keys()]).not.toContain('head.scratch');
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(m.namedModules().map(([k]) => k)).toEqual(['', 'backbone', 'backbone.bottom_up', 'backbone.bottom_up.stem', 'backbone.bottom_up.stem.stem_1/conv', 'backbone.bottom_up.stem.stem_2/conv', 'head']);
    m.dispose();
  });

  it('rejects names with ".", empty names and duplicates, and non-leaf parameters', () => {
    const m = new Module();
    expect(() => m.registerModule('a.b', new Module())).toThrow(/contains '\.'/);
    expect(() => m.registerParameter('', zeros([1]))).toThrow(/non-empty/);
    m.registerParameter('w', zeros([1]));
    expect(() => m.registerBuffer('w', zeros([1]))).toThrow(/'w' is already registered/);
    expect(() => m.registerParameter('i', zeros([1], 'i32'))).toThrow(/must be a float tensor/);
    m.dispose();
  });

  it('lists a shared parameter once', () => {
    const shared = new Leaf(2);
    const m = new Module();
    m.registerModule('a', shared);
    m.registerModule('b', shared);
    expect(m.namedParameters().map(([k]) => k)).toEqual(['a.weight', 'a.bias']);
    m.dispose();
  });

  it('propagates train()/eval() to every descendant', () => {
    const m = detectronLike();
    const all = () => m.namedModules().map(([, x]) => x.training);
    expect(all().every((t) => t)).toBe(true);
    expect(m.eval()).toBe(m);
    expect(all().every((t) => !t)).toBe(true);
    m.getModule('head')!.train();
    expect(m.getModule('head')!.training).toBe(true);
    expect(m.getModule('backbone')!.training).toBe(false);
    m.train();
    expect(all().every((t) => t)).toBe(true);
    m.dispose();
  });

  it('round-trips a state dict between two modules (tensor sources), copying in place', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const a = detectronLike();
    for (const [, t] of a.stateDict()) uniform_(t, -1, 1, rng.nextU32());
    const b = detectronLike();
    const weightBefore = (b.getModule('head') as Leaf).w;
    const r = b.loadStateDict(a.stateDict());
    expect(r).toEqual({ missingKeys: [], unexpectedKeys: [], shapeMismatches: [] });
    expect((b.getModule('head') as Leaf).w).toBe(weightBefore); // same tensor object, new values
    const sa = a.stateDict();
    for (const [k, t] of b.stateDict()) expect(await values(t), `${k} (seed ${seed})`).toEqual(await values(sa.get(k)!));
    a.dispose();
    b.dispose();
  });

  it('loads host tensors of every checkpoint dtype, converting to the parameter dtype', async () => {
    const m = new Module();
    const w = m.registerParameter('w', zeros([2, 3]));
    const counts = m.registerBuffer('num_batches_tracked', zeros([], 'i32'));
    const src = [0.5, -1.25, 3, 1e-3, 65504, -2];
    const cases = [
      { dtype: 'F32' as const, data: Float32Array.from(src), expected: Array.from(Float32Array.from(src)) },
      { dtype: 'F64' as const, data: Float64Array.from([0.1, 0.2, 0.3, 1 / 3, 2 ** 30, -7]), expected: Array.from(Float32Array.from([0.1, 0.2, 0.3, 1 / 3, 2 ** 30, -7])) },
      { dtype: 'F16' as const, data: Uint16Array.from(src, (v) => f32ToF16(v)), expected: [0.5, -1.25, 3, 0.0010004043579101562, 65504, -2] },
      { dtype: 'I8' as const, data: Int8Array.from([-128, -1, 0, 1, 64, 127]), expected: [-128, -1, 0, 1, 64, 127] },
      { dtype: 'U8' as const, data: Uint8Array.from([0, 1, 2, 128, 200, 255]), expected: [0, 1, 2, 128, 200, 255] },
      { dtype: 'I32' as const, data: Int32Array.from([-5, 7, 1 << 20, 0, 3, -1]), expected: [-5, 7, 1 << 20, 0, 3, -1] },
      { dtype: 'I64' as const, data: BigInt64Array.from([-5n, 7n, 1n << 40n, 0n, 3n, -1n]), expected: [-5, 7, 2 ** 40, 0, 3, -1] },
      { dtype: 'BOOL' as const, data: Uint8Array.from([1, 0, 1, 1, 0, 0]), expected: [1, 0, 1, 1, 0, 0] },
    ];
    for (const c of cases) {
      m.loadStateDict({ w: { dtype: c.dtype, shape: [2, 3], data: c.data }, num_batches_tracked: { dtype: 'I64', shape: [], data: BigInt64Array.from([90000n]) } });
      expect(await values(w), c.dtype).toEqual(c.expected);
      expect(await values(counts)).toEqual([90000]);
    }
    m.dispose();
  });

  it('strict loading reports missing, unexpected and mismatched keys in one error and loads nothing', async () => {
    const m = detectronLike();
    const state = new Map<string, Tensor | { dtype: 'F32'; shape: number[]; data: Float32Array }>();
    for (const [k, t] of m.stateDict()) state.set(k, { dtype: 'F32', shape: [...t.shape], data: new Float32Array(t.numel).fill(7) });
    state.delete('head.bias');
    state.set('backbone.bottom_up.stem.stem_1/conv.weight', { dtype: 'F32', shape: [4, 3], data: new Float32Array(12) });
    state.set('roi_heads.box_predictor.cls_score.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    let msg = '';
    try {
      m.loadStateDict(state);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/missing keys \(in the module, not in the state\): head\.bias/);
    expect(msg).toMatch(/unexpected keys \(in the state, not in the module\): roi_heads\.box_predictor\.cls_score\.weight/);
    expect(msg).toMatch(/shape mismatches: backbone\.bottom_up\.stem\.stem_1\/conv\.weight: state has \[4,3\], module has \[4,2\]/);
    // Nothing was copied.
    expect(await values((m.getModule('head') as Leaf).w)).toEqual([0, 0, 0, 0]);

    const r = m.loadStateDict(state, { strict: false });
    expect(r.missingKeys).toEqual(['head.bias']);
    expect(r.unexpectedKeys).toEqual(['roi_heads.box_predictor.cls_score.weight']);
    expect(r.shapeMismatches).toEqual([{ key: 'backbone.bottom_up.stem.stem_1/conv.weight', expected: [4, 2], got: [4, 3] }]);
    expect(await values((m.getModule('head') as Leaf).w)).toEqual([7, 7, 7, 7]);
    expect(await values(m.stateDict().get('head.bias')!)).toEqual([0, 0]);
    expect(await values(m.stateDict().get('backbone.bottom_up.stem.stem_1/conv.weight')!)).toEqual(new Array(8).fill(0));
    m.dispose();
  });

  it('rejects a host tensor whose data does not fill its shape', () => {
    const m = new Module();
    m.registerParameter('w', zeros([2, 2]));
    expect(() => m.loadStateDict({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } })).toThrow(/'w' has shape \[2,2\] \(4 elements\) but 3 values/);
    m.dispose();
  });

  it('loading after initialisation is not overwritten by the still-unsubmitted init kernels', async () => {
    const lin = new Linear(3, 2, { seed: 1 }); // init recorded, not yet submitted
    lin.loadStateDict({ weight: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, bias: { dtype: 'F32', shape: [2], data: Float32Array.from([7, 8]) } });
    expect(await values(lin.weight)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await values(lin.bias!)).toEqual([7, 8]);
    lin.dispose();
  });
});

// ---- Linear -----------------------------------------------------------------------------------

/** float64 reference of mean((x·Wᵀ + b - t)²) and its gradient with respect to W and b. */
function linearMseRef(x: Float64Array, w: Float64Array, b: Float64Array, t: Float64Array, rows: number, inF: number, outF: number) {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      let s = b[o]!;
      for (let k = 0; k < inF; k++) s += x[r * inF + k]! * w[o * inF + k]!;
      y[r * outF + o] = s;
    }
  let loss = 0;
  const dy = new Float64Array(rows * outF);
  for (let i = 0; i < y.length; i++) {
    const d = y[i]! - t[i]!;
    loss += d * d;
    dy[i] = (2 * d) / y.length;
  }
  loss /= y.length;
  const gw = new Float64Array(outF * inF);
  const gb = new Float64Array(outF);
  const gx = new Float64Array(rows * inF);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      const g = dy[r * outF + o]!;
      gb[o]! += g;
      for (let k = 0; k < inF; k++) {
        gw[o * inF + k]! += g * x[r * inF + k]!;
        gx[r * inF + k]! += g * w[o * inF + k]!;
      }
    }
  return { y, loss, gw, gb, gx };
}

describe('Linear', () => {
  it('initialises like PyTorch: weight and bias in U(-1/√in, 1/√in), deterministic per seed', async () => {
    const inF = 37;
    const lin = new Linear(inF, 53, { seed: 1234 });
    const bound = 1 / Math.sqrt(inF);
    const w = await values(lin.weight);
    const b = await values(lin.bias!);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(bound);
    const m = w.reduce((s, v) => s + v, 0) / w.length;
    const v = w.reduce((s, x) => s + (x - m) ** 2, 0) / w.length;
    // U(-c, c) has variance c²/3; n = 1961 samples: std error of the variance about 2.5%.
    expect(Math.abs(m)).toBeLessThan(0.1 * bound);
    expect(v / (bound * bound / 3)).toBeGreaterThan(0.85);
    expect(v / (bound * bound / 3)).toBeLessThan(1.15);
    const again = new Linear(inF, 53, { seed: 1234 });
    expect(await values(again.weight)).toEqual(w);
    expect(await values(again.bias!)).toEqual(b);
    const other = new Linear(inF, 53, { seed: 1235 });
    expect(await values(other.weight)).not.toEqual(w);
    for (const l of [lin, again, other]) l.dispose();
    expect(() => new Linear(0, 3)).toThrow(/inFeatures must be a positive integer/);
  });

  it('manualSeed makes unseeded construction reproducible', async () => {
    manualSeed(99);
    const a = new Linear(4, 3);
    manualSeed(99);
    const b = new Linear(4, 3);
    expect(await values(a.weight)).toEqual(await values(b.weight));
    expect(await values(a.bias!)).toEqual(await values(b.bias!));
    a.dispose();
    b.dispose();
  });

  for (const [rows, inF, outF, lead] of [
    [5, 7, 3, [5]],
    [6, 11, 9, [2, 3]],
  ] as const) {
    it(`forward and backward match a float64 reference: x [${lead},${inF}] -> ${outF}`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const lin = new Linear(inF, outF, { seed: rng.nextU32() });
      const w64 = Float64Array.from(await values(lin.weight));
      const b64 = Float64Array.from(await values(lin.bias!));
      const x64 = Float64Array.from(Float32Array.from(rng.uniformArray(rows * inF, -2, 2)));
      const t64 = Float64Array.from(Float32Array.from(rng.uniformArray(rows * outF, -1, 1)));
      const ref = linearMseRef(x64, w64, b64, t64, rows, inF, outF);
      // The reference gradient itself, by finite differences.
      expectClose(ref.gw, numericGrad((w) => linearMseRef(x64, w, b64, t64, rows, inF, outF).loss, Float64Array.from(w64)), { atol: 1e-6, what: 'reference dW' });
      expectClose(ref.gb, numericGrad((b) => linearMseRef(x64, w64, b, t64, rows, inF, outF).loss, Float64Array.from(b64)), { atol: 1e-6, what: 'reference db' });

      const x = fromArray(Float32Array.from(x64), [...lead, inF]);
      x.requiresGrad = true;
      const target = fromArray(Float32Array.from(t64), [...lead, outF]);
      // Intermediates live until the scope ends, so backward runs inside it.
      const loss = scope(() => {
        const y = lin.forward(x);
        const l = mean(square(sub(y, target)));
        backward(l);
        return l;
      });
      const yCheck = noGrad(() => lin.forward(x));
      expectClose(await yCheck.data(), ref.y, { atol: 1e-5, rtol: 1e-5, what: `y (seed ${seed})` });
      expectClose([await loss.item()], [ref.loss], { atol: 1e-6, rtol: 1e-5, what: `loss (seed ${seed})` });
      expectClose(await lin.weight.grad!.data(), ref.gw, { atol: 1e-6, rtol: 1e-4, what: `dW (seed ${seed})` });
      expectClose(await lin.bias!.grad!.data(), ref.gb, { atol: 1e-6, rtol: 1e-4, what: `db (seed ${seed})` });
      expectClose(await x.grad!.data(), ref.gx, { atol: 1e-6, rtol: 1e-4, what: `dx (seed ${seed})` });
      lin.zeroGrad();
      expect(lin.weight.grad).toBeNull();
      for (const t of [x, target, loss, yCheck]) t.dispose();
      x.grad?.dispose();
      lin.dispose();
    });
  }

  it('without bias has only a weight', () => {
    const lin = new Linear(3, 2, { bias: false });
    expect([...lin.stateDict().keys()]).toEqual(['weight']);
    lin.dispose();
  });
});

// ---- initialisers -----------------------------------------------------------------------------

async function stats(t: Tensor): Promise<{ mean: number; std: number; min: number; max: number }> {
  const v = await t.toArray();
  const m = v.reduce((s, x) => s + x, 0) / v.length;
  const sd = Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / v.length);
  return { mean: m, std: sd, min: Math.min(...v), max: Math.max(...v) };
}

describe('init', () => {
  it('computes fans like torch for linear and conv weights, and the gains', () => {
    expect(fanInAndFanOut([7, 5])).toEqual({ fanIn: 5, fanOut: 7 });
    expect(fanInAndFanOut([64, 32, 3, 3])).toEqual({ fanIn: 288, fanOut: 576 });
    expect(() => fanInAndFanOut([5])).toThrow(/at least 2 dimensions/);
    expect(calculateGain('relu')).toBeCloseTo(Math.SQRT2, 12);
    expect(calculateGain('leaky_relu')).toBeCloseTo(Math.sqrt(2 / (1 + 0.01 ** 2)), 12);
    expect(calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(calculateGain('tanh')).toBeCloseTo(5 / 3, 12);
    expect(calculateGain('conv2d')).toBe(1);
    expect(calculateGain('selu')).toBe(0.75);
  });

  // 4096 samples: the sample std is within ~2% of the true one (3 sigma ~ 3.3%), the mean within ~0.05 std.
  const shape = [64, 16, 2, 2];
  const { fanIn, fanOut } = fanInAndFanOut(shape);
  const cases: { name: string; fill: (t: Tensor, seed: number) => void; std: number; bound?: number }[] = [
    { name: 'kaiming normal, fan_out, relu (MSRA)', fill: (t, s) => kaimingNormal_(t, { mode: 'fan_out', nonlinearity: 'relu', seed: s }), std: Math.SQRT2 / Math.sqrt(fanOut) },
    { name: 'kaiming normal, fan_in, leaky 0.2', fill: (t, s) => kaimingNormal_(t, { a: 0.2, seed: s }), std: Math.sqrt(2 / 1.04) / Math.sqrt(fanIn) },
    { name: 'kaiming uniform, fan_in, relu', fill: (t, s) => kaimingUniform_(t, { nonlinearity: 'relu', seed: s }), std: Math.SQRT2 / Math.sqrt(fanIn), bound: Math.sqrt(6 / fanIn) },
    { name: 'kaiming uniform, fan_out, a=1 (c2 xavier)', fill: (t, s) => kaimingUniform_(t, { a: 1, mode: 'fan_out', seed: s }), std: 1 / Math.sqrt(fanOut), bound: Math.sqrt(3 / fanOut) },
    { name: 'xavier uniform, gain 2', fill: (t, s) => xavierUniform_(t, { gain: 2, seed: s }), std: 2 * Math.sqrt(2 / (fanIn + fanOut)), bound: 2 * Math.sqrt(6 / (fanIn + fanOut)) },
    { name: 'xavier normal', fill: (t, s) => xavierNormal_(t, { seed: s }), std: Math.sqrt(2 / (fanIn + fanOut)) },
    { name: 'normal(0.5, 0.01)', fill: (t, s) => normal_(t, 0.5, 0.01, s), std: 0.01 },
    { name: 'uniform(-3, 1)', fill: (t, s) => uniform_(t, -3, 1, s), std: 4 / Math.sqrt(12) },
  ];
  for (const c of cases) {
    it(`${c.name}: statistics, bounds and determinism`, async () => {
      const seed = testSeed();
      const t = zeros(shape);
      c.fill(t, seed);
      const s = await stats(t);
      const what = `${c.name} (seed ${seed}): ${JSON.stringify(s)}`;
      expect(s.std / c.std, what).toBeGreaterThan(0.95);
      expect(s.std / c.std, what).toBeLessThan(1.05);
      const expectedMean = c.name.startsWith('normal(0.5') ? 0.5 : c.name.startsWith('uniform(-3') ? -1 : 0;
      expect(Math.abs(s.mean - expectedMean), what).toBeLessThan(0.06 * c.std);
      if (c.bound !== undefined) {
        expect(s.max, what).toBeLessThanOrEqual(c.bound);
        expect(s.min, what).toBeGreaterThanOrEqual(-c.bound);
        expect(s.max, what).toBeGreaterThan(0.95 * c.bound);
      }
      const again = zeros(shape);
      c.fill(again, seed);
      expect(await again.toArray()).toEqual(await t.toArray());
      t.dispose();
      again.dispose();
    });
  }

  it('constant fill and c2_msra_fill (zero bias) work on views and leave the rest alone', async () => {
    const t = zeros([3, 4]);
    constant_(t, 2.5);
    expect(await t.toArray()).toEqual(new Array(12).fill(2.5));
    const w = zeros([8, 4, 3, 3]);
    const b = fromArray([1, 2, 3, 4, 5, 6, 7, 8]);
    c2MsraFill(w, b, 5);
    expect(await b.toArray()).toEqual(new Array(8).fill(0));
    const s = await stats(w);
    expect(s.std).toBeGreaterThan(0);
    for (const x of [t, w, b]) x.dispose();
  });

  it('leaves no tensors behind', () => {
    const before = memory().liveTensors;
    const t = zeros([10]);
    uniform_(t, 0, 1, 3);
    t.dispose();
    expect(memory().liveTensors).toBe(before);
    void sum;
  });
});
