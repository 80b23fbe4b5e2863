// The autograd engine: accumulation into .grad across backward calls, explicit output gradients,
// a tensor used by several ops (diamond graphs), noGrad, retainGraph and its error, the scalar
// requirement, gradients of non-leaf inputs not stored, and a chain checked by finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import { Rng, expectClose, numericGrad, testSeed } from '../util';
import { download, randHost, upload } from './reference';

beforeAll(async () => {
  await cg.init();
});

describe('autograd', () => {
  it('accumulates into .grad across two backward calls', async () => {
    const x = cg.fromArray([1, 2, 3]);
    x.requiresGrad = true;
    cg.backward(cg.sum(cg.mul(x, x))); // 2x
    expect(await x.grad!.toArray()).toEqual([2, 4, 6]);
    cg.backward(cg.sum(cg.mulScalar(x, 3))); // + 3
    expect(await x.grad!.toArray()).toEqual([5, 7, 9]);
  });

  it('takes an explicit output gradient and checks its shape', async () => {
    const x = cg.fromArray([1, 2, 3, 4], [2, 2]);
    x.requiresGrad = true;
    const y = cg.mul(x, x);
    cg.backward(y, cg.fromArray([1, 0, -1, 0.5], [2, 2]));
    expect(await x.grad!.toArray()).toEqual([2, 0, -6, 4]);
    const z = cg.exp(x);
    expect(() => cg.backward(z, cg.zeros([4]))).toThrow(/gradient shape \[4\] does not match output shape \[2,2\]/);
  });

  it('requires a scalar output when no gradient is given', () => {
    const x = cg.fromArray([1, 2]);
    x.requiresGrad = true;
    expect(() => cg.backward(cg.exp(x))).toThrow(/grad can be implicitly created only for scalar outputs, got shape \[2\]/);
    expect(() => cg.backward(cg.fromArray([1]))).toThrow(/does not require grad/);
  });

  it('diamond graph: a tensor used by several ops gets the sum of the paths', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const xh = randHost(rng, [4, 5], 0.5, 1.5);
    const x = upload(xh, 'transposed', { requiresGrad: true });
    // a = exp(x); b = a * x; c = a + sin(x); loss = sum(b * c + x)
    const a = cg.exp(x);
    const loss = cg.sum(cg.add(cg.mul(cg.mul(a, x), cg.add(a, cg.sin(x))), x));
    const f = (v: number) => Math.exp(v) * v * (Math.exp(v) + Math.sin(v)) + v;
    const df = (v: number) => {
      const e = Math.exp(v);
      return (e * v + e) * (e + Math.sin(v)) + e * v * (e + Math.cos(v)) + 1;
    };
    const pts = rng.uniformArray(6, 0.5, 1.5);
    expectClose(Array.from(pts, df), numericGrad((v) => v.reduce((s, p) => s + f(p), 0), pts), { atol: 1e-5, rtol: 1e-6, what: 'reference' });
    expectClose([await loss.item()], [xh.data.reduce((s, v) => s + f(v), 0)], { rtol: 1e-5, what: `diamond forward (seed ${seed})` });
    cg.backward(loss);
    expectClose(await download(x.grad!), xh.data.map(df), { rtol: 1e-5, what: `diamond grad (seed ${seed})`, shape: xh.shape });
  });

  it('the same tensor as both operands (x * x, x + x)', async () => {
    const x = cg.fromArray([1.5, -2]);
    x.requiresGrad = true;
    cg.backward(cg.sum(cg.add(cg.mul(x, x), cg.add(x, x))));
    expect(await x.grad!.toArray()).toEqual([5, -2]); // 2x + 2
  });

  it('only leaves get .grad; inputs that do not require grad get none', async () => {
    const x = cg.fromArray([1, 2]);
    const w = cg.fromArray([3, 4]);
    x.requiresGrad = true;
    const h = cg.mul(x, w);
    cg.backward(cg.sum(cg.square(h)));
    expect(await x.grad!.toArray()).toEqual([2 * 3 * 3, 2 * 8 * 4]);
    expect(w.grad).toBeNull();
    expect(h.grad).toBeNull();
  });

  it('noGrad records nothing and restores the mode (also after a throw and for async)', async () => {
    const x = cg.fromArray([1, 2]);
    x.requiresGrad = true;
    const y = cg.noGrad(() => cg.mul(x, x));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    expect(cg.isGradEnabled()).toBe(true);
    expect(() =>
      cg.noGrad(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(cg.isGradEnabled()).toBe(true);
    await cg.noGrad(async () => {
      expect(cg.isGradEnabled()).toBe(false);
      await Promise.resolve();
    });
    expect(cg.isGradEnabled()).toBe(true);
    expect(cg.mul(x, x).requiresGrad).toBe(true);
    expect(() => cg.backward(y)).toThrow(/does not require grad/);
  });

  it('a second backward through a freed graph fails clearly; retainGraph allows it', async () => {
    const x = cg.fromArray([1, 2, 3]);
    x.requiresGrad = true;
    const loss = cg.sum(cg.mul(x, x));
    cg.backward(loss);
    expect(() => cg.backward(loss)).toThrow(/the graph through sum was already freed; pass \{ retainGraph: true \}/);
    expect(await x.grad!.toArray()).toEqual([2, 4, 6]); // unchanged by the failed call

    const y = cg.fromArray([1, 2, 3]);
    y.requiresGrad = true;
    const h = cg.exp(y);
    const l1 = cg.sum(h);
    cg.backward(l1, undefined, { retainGraph: true });
    cg.backward(l1);
    expectClose(await download(y.grad!), [1, 2, 3].map((v) => 2 * Math.exp(v)), { what: 'retained twice' });
    // A second loss sharing the freed subgraph also fails.
    const l2 = cg.sum(cg.mulScalar(h, 2));
    expect(() => cg.backward(l2)).toThrow(/the graph through exp was already freed/);
  });

  it('backward frees every gradient it creates (live tensors back to graph + x + x.grad)', async () => {
    await cg.rt().sync();
    const before = cg.memory();
    const x = cg.fromArray(new Float32Array(300).fill(0.5), [10, 30]);
    x.requiresGrad = true;
    const graph = [cg.exp(cg.transpose(x, 0, 1))];
    graph.push(cg.mul(graph[0]!, cg.transpose(cg.sigmoid(x), 0, 1)));
    graph.push(cg.mean(graph[1]!, 0));
    graph.push(cg.sum(cg.reshape(graph[2]!, [2, 5])));
    const afterForward = cg.memory().liveTensors;
    cg.backward(graph[3]!);
    await cg.rt().sync();
    expect(cg.memory().liveTensors).toBe(afterForward + 1); // only x.grad is new
    for (const t of graph) t.dispose();
    expect(x.grad!.shape).toEqual([10, 30]);
    expectClose(await download(x.grad!), new Float64Array(300).fill((Math.exp(0.5) / (1 + Math.exp(-0.5)) + Math.exp(0.5) * (1 / (1 + Math.exp(-0.5))) * (1 - 1 / (1 + Math.exp(-0.5)))) / 30), { what: 'grad', rtol: 1e-5 });
    x.grad!.dispose();
    x.dispose();
    void before;
  });
});
