// matmul and linear on autocast's f16 list: under autocast their f32 operands and weights are cast
// to f16 (a parameter's cast made once per scope) and the output is f16; backward (outside the
// scope) brings f32 gradients to the f32 master weights, matching the float64 gradients of the
// f16-rounded values at f16 tolerance. Outside autocast the same calls stay f32.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import { autocast, autocastF16 } from '../../../engine/amp/autocast';
import { f16ToF32, f32ToF16 } from '../../../runtime/dtype';
import { Rng, expectClose, testSeed } from '../../util';

let f16 = false;
beforeAll(async () => {
  await cg.init();
  f16 = cg.rt().gpu.features.f16;
});

const round = (a: ArrayLike<number>) => Float64Array.from(a, (v) => f16ToF32(f32ToF16(v)));

describe('autocast: matmul and linear in f16', () => {
  it('linear and matmul give f16 under autocast, f32 outside; the weight cast is cached per scope', () => {
    if (!f16) return;
    const x = cg.fromArray(new Float32Array(12).fill(0.5), [3, 4]);
    const w = cg.fromArray(new Float32Array(8).fill(0.25), [2, 4]);
    w.requiresGrad = true;
    autocast(() => {
      expect(cg.linear(x, w).dtype).toBe('f16');
      expect(cg.matmul(x, cg.transpose(w, 0, 1)).dtype).toBe('f16');
      expect(autocastF16(w)).toBe(autocastF16(w));
    });
    expect(cg.linear(x, w).dtype).toBe('f32');
    expect(cg.matmul(x, cg.transpose(w, 0, 1)).dtype).toBe('f32');
  });

  it('gradients reach the f32 parameters (linear with bias and ReLU, then matmul)', async () => {
    if (!f16) return;
    const seed = testSeed();
    const rng = new Rng(seed);
    const [R, I, O, P] = [9, 13, 7, 5];
    const xv = round(rng.uniformArray(R * I, -1, 1));
    const wv = round(rng.uniformArray(O * I, -1, 1));
    const bv = Float64Array.from(rng.uniformArray(O, -1, 1), Math.fround);
    const vv = round(rng.uniformArray(O * P, -1, 1));
    const x = cg.fromArray(xv, [R, I]);
    const w = cg.fromArray(wv, [O, I]);
    const b = cg.fromArray(bv, [O]);
    const v = cg.fromArray(vv, [O, P]);
    for (const t of [w, b, v]) t.requiresGrad = true;
    const out = autocast(() => {
      const h = cg.linear(x, w, b, 'relu');
      expect(h.dtype).toBe('f16');
      const y = cg.matmul(h, v);
      expect(y.dtype).toBe('f16');
      return cg.sum(y);
    });
    cg.backward(out);
    expect([w.grad!.dtype, b.grad!.dtype, v.grad!.dtype]).toEqual(['f32', 'f32', 'f32']);
    // float64: z = x·wᵀ + b, h = relu(z) (rounded to f16 as stored), loss = Σ h·v.
    const z = new Float64Array(R * O);
    for (let r = 0; r < R; r++) for (let o = 0; o < O; o++) {
      let s = bv[o]!;
      for (let i = 0; i < I; i++) s += xv[r * I + i]! * wv[o * I + i]!;
      z[r * O + o] = s;
    }
    const h = round(z.map((s) => Math.max(s, 0)));
    const gv = new Float64Array(O * P);
    const gw = new Float64Array(O * I);
    const gb = new Float64Array(O);
    for (let r = 0; r < R; r++) for (let o = 0; o < O; o++) {
      for (let p = 0; p < P; p++) gv[o * P + p]! += h[r * O + o]!;
      if (z[r * O + o]! <= 0) continue;
      let gh = 0;
      for (let p = 0; p < P; p++) gh += vv[o * P + p]!;
      gb[o]! += gh;
      for (let i = 0; i < I; i++) gw[o * I + i]! += gh * xv[r * I + i]!;
    }
    const tol = { atol: 5e-3, rtol: 3e-3 };
    expectClose(await v.grad!.data(), gv, { ...tol, what: `dv (seed ${seed})` });
    expectClose(await w.grad!.data(), gw, { ...tol, what: `dw (seed ${seed})` });
    expectClose(await b.grad!.data(), gb, { ...tol, what: `db (seed ${seed})` });
  });
});
