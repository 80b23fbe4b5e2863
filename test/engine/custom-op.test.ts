// customOp (engine/ops/custom.ts): a fused SiLU y = x·sigmoid(x) declared as one forward and one
// backward kernel, checked against the composed ops (mul(x, sigmoid(x)), forward and gradient) and
// against float64 finite differences; a two-input op with a uniform parameter and a broadcast-free
// gate (gradients to both inputs, one input without requiresGrad, a strided input view); one
// dispatch each way; and the declaration's checks.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import { customOp } from '../../engine';
import { Rng, expectClose, numericGrad, testSeed } from '../util';

beforeAll(async () => {
  await cg.init();
});

const silu = customOp({
  name: 'test_silu',
  inputs: ['x'],
  output: 'y',
  forward: 'let s = 1.0 / (1.0 + exp(-x[i])); y[i] = x[i] * s;',
  backward: 'let s = 1.0 / (1.0 + exp(-x[i])); grad_x[i] = grad_y[i] * s * (1.0 + x[i] * (1.0 - s));',
});

// out = x * sigmoid(beta * gate): d/dx = g·σ, d/dgate = g·x·beta·σ(1-σ).
const gated = customOp({
  name: 'test_gated',
  inputs: ['x', 'gate'],
  output: 'out',
  params: { beta: 'f32' },
  helpers: 'fn sig(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }',
  forward: 'out[i] = x[i] * sig(p.beta * gate[i]);',
  backward: 'let s = sig(p.beta * gate[i]); grad_x[i] = grad_out[i] * s; grad_gate[i] = grad_out[i] * x[i] * p.beta * s * (1.0 - s);',
});

const sig = (v: number) => 1 / (1 + Math.exp(-v));

describe('customOp', () => {
  it('fused SiLU matches the composed ops, forward and backward, in one dispatch each way', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [3, 5, 37];
    const host = Float32Array.from(rng.uniformArray(3 * 5 * 37, -4, 4));
    const w = cg.fromArray(Float32Array.from(rng.uniformArray(host.length, -1, 1)), shape);
    const x1 = cg.fromArray(host, shape);
    const x2 = cg.fromArray(host, shape);
    x1.requiresGrad = x2.requiresGrad = true;
    const d0 = cg.rt().stats().dispatches;
    const y1 = silu([x1]);
    expect(cg.rt().stats().dispatches - d0).toBe(1);
    expect(y1.requiresGrad).toBe(true);
    expect(y1.gradFn?.name).toBe('test_silu');
    const y2 = cg.mul(x2, cg.sigmoid(x2));
    expectClose(await y1.data(), await y2.data(), { atol: 1e-6, rtol: 1e-5, what: `forward (seed ${seed})` });
    const l1 = cg.sum(cg.mul(y1, w));
    const l2 = cg.sum(cg.mul(y2, w));
    cg.backward(l1);
    cg.backward(l2);
    expectClose(await x1.grad!.data(), await x2.grad!.data(), { atol: 1e-6, rtol: 1e-5, what: `grad (seed ${seed})` });
    // The float64 derivative of sum(w · x·σ(x)).
    const wh = await w.data();
    const expected = Float64Array.from(host, (v, i) => wh[i]! * sig(v) * (1 + v * (1 - sig(v))));
    expectClose(await x1.grad!.data(), expected, { atol: 1e-5, rtol: 1e-4, what: `grad vs float64 (seed ${seed})` });
  });

  it('gradients agree with finite differences (two inputs, a parameter)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const n = 11;
    const xh = Float64Array.from(rng.uniformArray(n, -2, 2));
    const gh = Float64Array.from(rng.uniformArray(n, -2, 2));
    const wh = Float64Array.from(rng.uniformArray(n, -1, 1));
    const beta = 1.7;
    const x = cg.fromArray(Float32Array.from(xh));
    const gate = cg.fromArray(Float32Array.from(gh));
    x.requiresGrad = gate.requiresGrad = true;
    const y = gated([x, gate], { beta });
    cg.backward(cg.sum(cg.mul(y, cg.fromArray(Float32Array.from(wh)))));
    const f = (xs: Float64Array, gs: Float64Array) => xs.reduce((s, v, i) => s + wh[i]! * v * sig(beta * gs[i]!), 0);
    const nx = numericGrad((v) => f(v, gh), Float64Array.from(xh));
    const ng = numericGrad((v) => f(xh, v), Float64Array.from(gh));
    // The inputs were rounded to f32 on upload; compare against the derivative at those values.
    expectClose(await x.grad!.data(), nx, { atol: 1e-4, rtol: 1e-3, what: `d/dx (seed ${seed})` });
    expectClose(await gate.grad!.data(), ng, { atol: 1e-4, rtol: 1e-3, what: `d/dgate (seed ${seed})` });
  });

  it('strided inputs, inputs without requiresGrad, noGrad, and a new parameter value compile nothing', async () => {
    const base = cg.fromArray([1, -1, 2, -2, 3, -3, 4, -4], [4, 2]);
    const xs = cg.transpose(base, 0, 1); // [2, 4], not contiguous
    const gate = cg.fromArray([0.5, -0.5, 1, 0, 2, -2, 0.25, 3], [2, 4]);
    gate.requiresGrad = true;
    const p0 = cg.rt().stats().pipelines;
    const y = gated([xs, gate], { beta: 0.3 });
    const xsh = [1, 2, 3, 4, -1, -2, -3, -4];
    const gh = await gate.toArray();
    expectClose(await y.data(), xsh.map((v, i) => v * sig(0.3 * gh[i]!)), { atol: 1e-6, what: 'strided forward' });
    cg.backward(cg.sum(y));
    expectClose(await gate.grad!.data(), xsh.map((v, i) => v * 0.3 * sig(0.3 * gh[i]!) * (1 - sig(0.3 * gh[i]!))), { atol: 1e-6, what: 'grad of gate' });
    expect(xs.grad).toBeNull();
    const z = cg.noGrad(() => gated([xs, gate], { beta: 2 }));
    expect(z.requiresGrad).toBe(false);
    expect(cg.rt().stats().pipelines - p0).toBeLessThanOrEqual(2); // forward + backward, at most once each
  });

  it('checks its declaration and its calls', () => {
    expect(() => customOp({ name: 'test_bad1', inputs: ['x', 'x'], forward: '' })).toThrow(/distinct/);
    expect(() => customOp({ name: 'test_bad2', inputs: ['p'], forward: '' })).toThrow(/bad binding name 'p'/);
    expect(() => customOp({ name: 'test_bad3', inputs: ['x'], params: { n: 'u32' }, forward: '' })).toThrow(/bad parameter name 'n'/);
    const x = cg.fromArray([1, 2]);
    expect(() => gated([x], { beta: 1 })).toThrow(/1 inputs given, 2 declared/);
    expect(() => gated([x, x])).toThrow(/parameter 'beta' is missing/);
    expect(() => gated([x, x], { beta: 1, gamma: 2 })).toThrow(/unknown parameter 'gamma'/);
  });
});
