// Automatic elementwise fusion (engine/lazy.ts): every elementwise op of the table inside a fused
// chain, forward and backward, against float64 references (odd shapes, non-contiguous and
// broadcast operands); a chain of N ops in one dispatch; intermediates saved for backward; the
// expression-size and binding limits; in-place writes after a pending read; the pool staying flat;
// and the switch.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import type { Tensor } from '../../engine';
import { SGD } from '../../engine/optim';
import { BINARY_OPS, UNARY_OPS } from '../../kernels/elementwise/table';
import { Rng, expectClose, testSeed } from '../util';
import { download, type Host, mapHost, randHost, randIntHost, sumToShapeHost, upload } from './reference';
import { BINARY, UNARY } from '../kernels/elementwise/reference-ops';

beforeAll(async () => {
  await cg.init();
});

afterEach(() => cg.setFusion(true));

/** Dispatches recorded while `fn` runs (the profiler counts every kernel launch). */
async function dispatchesOf<T>(fn: () => T): Promise<{ result: T; dispatches: number }> {
  const { result, report } = await cg.rt().profile(fn);
  return { result, dispatches: report.dispatches };
}

describe('fused chains: every unary op', () => {
  const names = Object.keys(UNARY_OPS) as (keyof typeof UNARY_OPS)[];
  it('op inside z = op(neg(neg(x))) * w + x: one dispatch forward, values and gradients vs float64', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (const [k, name] of names.entries()) {
      const c = UNARY[name];
      await cg.scopeAsync(async () => {
        const shape = [3, 5, 7];
        const lo = c.lo ?? -2;
        const hi = c.hi ?? 2;
        const x = randHost(rng, shape, lo, hi);
        const w = randHost(rng, [5, 1]);
        const xt = upload(x, k % 2 ? 'transposed' : 'strided', { requiresGrad: !!c.df });
        const wt = upload(w, 'contiguous', { requiresGrad: !!c.df });
        const what = `${name} (seed ${seed})`;
        const { result: z, dispatches } = await dispatchesOf(() => {
          const z = cg.add(cg.mul(c.run(cg.neg(cg.neg(xt))), wt), xt);
          void z.buffer; // computes the pending expression
          return z;
        });
        expect(dispatches, `${what}: forward dispatches`).toBe(1);
        const wv = (i: number) => w.data[Math.floor(i / 7) % 5]!;
        expectClose(await download(z), x.data.map((v, i) => c.f(v) * wv(i) + v), { atol: c.atol ?? 1e-5, rtol: 1e-4, what: `${what} forward`, shape });
        if (!c.df) return;
        const g = randHost(rng, shape);
        cg.backward(z, upload(g));
        const gx = x.data.map((v, i) => g.data[i]! * (wv(i) * c.df!(v) + 1));
        const gw = sumToShapeHost(mapHost([x, g], (v, gv) => gv * c.f(v)), [5, 1]);
        expectClose(await download(xt.grad!), gx, { atol: c.atol ?? 1e-5, rtol: 1e-4, what: `${what} grad x`, shape });
        expectClose(await download(wt.grad!), gw.data, { atol: 1e-4, rtol: 1e-4, what: `${what} grad w`, shape: [5, 1] });
      });
    }
  });
});

describe('fused chains: every binary op', () => {
  const names = Object.keys(BINARY_OPS) as (keyof typeof BINARY_OPS)[];
  it('op inside z = cast(op(neg(neg(a)), b)) * c with broadcasting on both sides: values and gradients vs float64', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (const name of names) {
      const c = BINARY[name];
      await cg.scopeAsync(async () => {
        const [sa, sb, sc] = [[5, 6], [6], [5, 1]];
        const val = (s: number[]): Host => (c.bool ? randIntHost(rng, s, -2, 3) : randHost(rng, s, c.lo ?? -2, c.hi ?? 2));
        const a = val(sa);
        const b = val(sb);
        const cc = randHost(rng, sc);
        const grad = !!c.gx;
        const at = upload(a, 'transposed', { requiresGrad: grad });
        const bt = upload(b, 'strided', { requiresGrad: grad });
        const ct = upload(cc, 'contiguous', { requiresGrad: grad });
        const what = `${name} (seed ${seed})`;
        const { result: z, dispatches } = await dispatchesOf(() => {
          const y = c.run(cg.neg(cg.neg(at)), bt);
          const z = cg.mul(c.bool ? cg.cast(y, 'f32') : y, ct);
          void z.buffer;
          return z;
        });
        expect(dispatches, `${what}: forward dispatches`).toBe(1);
        const f = mapHost([a, b], c.f);
        const ref = mapHost([f, cc], (fv, cv) => fv * cv);
        expectClose(await download(z), ref.data, { what: `${what} forward`, shape: ref.shape });
        if (!grad) return;
        const g = randHost(rng, ref.shape);
        cg.backward(z, upload(g));
        const gcv = mapHost([g, cc], (gv, cv) => gv * cv);
        expectClose(await download(at.grad!), sumToShapeHost(mapHost([a, b, gcv], (x, y, gv) => gv * c.gx!(x, y)), sa).data, { what: `${what} grad a`, shape: sa });
        expectClose(await download(bt.grad!), sumToShapeHost(mapHost([a, b, gcv], (x, y, gv) => gv * c.gy!(x, y)), sb).data, { what: `${what} grad b`, shape: sb });
        expectClose(await download(ct.grad!), sumToShapeHost(mapHost([f, g], (fv, gv) => fv * gv), sc).data, { what: `${what} grad c`, shape: sc });
      });
    }
  });

  it('where with number branches and a bool condition fuses with what reads it', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const x = randHost(rng, [7, 3]);
    const xt = upload(x, 'transposed', { requiresGrad: true });
    const { result: y, dispatches } = await dispatchesOf(() => {
      const y = cg.mul(cg.where(cg.gt(xt, 0), xt, 0.25), 3);
      void y.buffer;
      return y;
    });
    expect(dispatches).toBe(1);
    expectClose(await download(y), x.data.map((v) => 3 * (v > 0 ? v : 0.25)), { what: `where chain (seed ${seed})` });
    cg.backward(cg.sum(y));
    expectClose(await download(xt.grad!), x.data.map((v) => (v > 0 ? 3 : 0)), { what: `where chain grad (seed ${seed})` });
  });
});

describe('model epilogues through fusion', () => {
  it('the eSE gate x * hardsigmoid(s) (s per image and channel): one dispatch forward, one elementwise kernel backward, vs float64', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const [n, c, h, w] = [2, 5, 3, 7];
    const x = randHost(rng, [n, c, h, w]);
    const sv = randHost(rng, [n, c, 1, 1], -4, 4);
    const xt = upload(x, 'transposed', { requiresGrad: true });
    const st = upload(sv, 'contiguous', { requiresGrad: true });
    const hs = (v: number) => Math.min(Math.max(v / 6 + 0.5, 0), 1);
    const dhs = (v: number) => (v > -3 && v < 3 ? 1 / 6 : 0);
    const gate = (i: number) => sv.data[Math.floor(i / (h * w))]!;
    const { result: y, dispatches } = await dispatchesOf(() => {
      const y = cg.mul(xt, cg.hardsigmoid(st));
      void y.buffer;
      return y;
    });
    expect(dispatches).toBe(1);
    expectClose(await download(y), x.data.map((v, i) => v * hs(gate(i))), { what: `eSE forward (seed ${seed})` });
    const g = randHost(rng, [n, c, h, w]);
    const gt = upload(g);
    void gt.buffer;
    const back = await dispatchesOf(() => {
      cg.backward(y, gt);
      void xt.grad!.buffer;
      void st.grad!.buffer;
    });
    // dx and the full-size product for ds in one kernel, then ds's reduction over H, W.
    expect(back.dispatches).toBeLessThanOrEqual(3);
    expectClose(await download(xt.grad!), x.data.map((_, i) => g.data[i]! * hs(gate(i))), { what: `eSE dx (seed ${seed})` });
    const ds = sumToShapeHost(mapHost([x, g], (xv, gv) => xv * gv), [n, c, 1, 1]).data.map((v, k) => v * dhs(sv.data[k]!));
    expectClose(await download(st.grad!), ds, { what: `eSE ds (seed ${seed})`, atol: 1e-5 });
  });
});

describe('fusion mechanics', () => {
  it('a chain of N ops is one dispatch; the same chain unfused is N; the values agree', async () => {
    const rng = new Rng(testSeed());
    const x = randHost(rng, [9, 13]);
    const chain = (t: Tensor) => cg.tanh(cg.addScalar(cg.mulScalar(cg.sigmoid(cg.sub(cg.exp(cg.mulScalar(t, 0.3)), 1)), 2), -0.5));
    const run = async (on: boolean) => {
      cg.setFusion(on);
      const xt = upload(x, 'strided');
      const { result, dispatches } = await dispatchesOf(() => {
        const y = chain(xt);
        void y.buffer;
        return y;
      });
      return { values: await download(result), dispatches };
    };
    const fused = await run(true);
    const eager = await run(false);
    expect(fused.dispatches).toBe(1);
    expect(eager.dispatches).toBeGreaterThanOrEqual(6);
    const ref = x.data.map((v) => Math.tanh(2 / (1 + Math.exp(-(Math.exp(0.3 * v) - 1))) - 0.5));
    expectClose(fused.values, ref, { what: 'fused chain' });
    expectClose(eager.values, fused.values, { atol: 1e-6, what: 'fused vs unfused' });
  });

  it('the backward of a chain fuses too, and saved intermediates are stored by the forward kernel', async () => {
    const rng = new Rng(testSeed());
    const x = randHost(rng, [11, 5]);
    const count = async (on: boolean) => {
      cg.setFusion(on);
      const xt = upload(x, 'contiguous', { requiresGrad: true });
      const { dispatches } = await dispatchesOf(() => {
        // exp and sigmoid save their outputs for backward: stored as extra outputs.
        const y = cg.mul(cg.sigmoid(cg.exp(cg.mulScalar(xt, 0.5))), xt);
        cg.backward(y, cg.ones(y.shape));
        void xt.grad!.buffer;
      });
      return { dispatches, grad: await download(xt.grad!) };
    };
    const fused = await count(true);
    const eager = await count(false);
    expect(fused.dispatches).toBeLessThan(eager.dispatches);
    expect(fused.dispatches).toBeLessThanOrEqual(3);
    const s = (v: number) => 1 / (1 + Math.exp(-v));
    const ref = x.data.map((v) => {
      const e = Math.exp(0.5 * v);
      return s(e) + v * s(e) * (1 - s(e)) * e * 0.5;
    });
    expectClose(fused.grad, ref, { what: 'grad through a fused chain', rtol: 1e-4 });
  });

  it('a pending tensor read through a view, an intermediate read after its consumer ran, long chains and many leaves', async () => {
    const rng = new Rng(testSeed());
    const x = randHost(rng, [4, 6]);
    const xt = upload(x);
    const a = cg.mulScalar(xt, 2);
    const b = cg.addScalar(a, 1);
    const bT = cg.transpose(b, 0, 1);
    expectClose(await download(cg.mulScalar(bT, 1)), Array.from({ length: 24 }, (_, i) => 2 * x.data[(i % 4) * 6 + Math.floor(i / 4)]! + 1), { what: 'transposed view of a pending tensor' });
    expectClose(await download(a), x.data.map((v) => 2 * v), { what: 'intermediate after its consumer' });
    let t = xt;
    for (let i = 0; i < 130; i++) t = cg.addScalar(t, 0.5);
    expectClose(await download(t), x.data.map((v) => v + 65), { what: '130 chained ops', atol: 1e-4 });
    const parts = Array.from({ length: 12 }, () => randHost(rng, [4, 6]));
    let s = cg.mulScalar(upload(parts[0]!), 1);
    for (const p of parts.slice(1)) s = cg.add(s, upload(p, 'transposed'));
    expectClose(await download(s), x.data.map((_, i) => parts.reduce((acc, p) => acc + p.data[i]!, 0)), { what: '12 distinct leaves', atol: 1e-5 });
  });

  it('an in-place update (optimizer step) waits for pending expressions that read the old values', async () => {
    const p = cg.fromArray([1, 2, 3, 4]);
    p.requiresGrad = true;
    const opt = new SGD([p], { lr: 0.5 });
    cg.backward(cg.sum(cg.mul(p, p))); // grad 2p
    const before = cg.mulScalar(p.detach(), 10); // pending: reads p
    opt.step(); // p -= 0.5 * 2p = 0
    expect(await before.toArray()).toEqual([10, 20, 30, 40]);
    expect(await p.toArray()).toEqual([0, 0, 0, 0]);
  });

  it('the pool stays flat: pending tensors disposed unread free their buffers and leaves', async () => {
    const x = cg.fromArray(Array.from({ length: 301 }, (_, i) => i / 100));
    x.requiresGrad = true;
    const step = () =>
      cg.scope(() => {
        const unread = cg.exp(cg.mulScalar(x, 0.25)); // never read: freed pending
        void unread;
        const y = cg.sum(cg.mul(cg.sigmoid(x), cg.addScalar(x, 1)));
        cg.backward(y);
        void x.grad!.buffer;
        x.grad!.dispose();
        x.grad = null;
      });
    step();
    await cg.rt().sync();
    const m0 = cg.memory();
    for (let i = 0; i < 5; i++) step();
    await cg.rt().sync();
    const m1 = cg.memory();
    expect(m1.liveStorages).toBe(m0.liveStorages);
    expect(m1.liveBytes).toBe(m0.liveBytes);
  });

  it('setFusion(false) dispatches every op at once; CELLGPU_FUSION=0 starts it off', async () => {
    cg.setFusion(false);
    expect(cg.isFusionEnabled()).toBe(false);
    const x = cg.fromArray([1, 2, 3]);
    const { dispatches } = await dispatchesOf(() => cg.addScalar(cg.mulScalar(x, 2), 1));
    expect(dispatches).toBe(2);
  });
});
