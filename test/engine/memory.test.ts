// Memory rules: scope() disposes temporaries and keeps what it returns (arrays, objects, keep()),
// nested and async scopes, live bytes return to the baseline after forward + backward, pooled
// buffers are reused, and a disposed tensor fails with a clear error wherever it is used.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import type { Tensor } from '../../engine';

beforeAll(async () => {
  await cg.init();
});

async function settled() {
  await cg.rt().sync(); // the uniform arena and pending buffers are released at submit
  return cg.memory();
}

describe('scope', () => {
  it('disposes temporaries and keeps the returned tensors (also inside arrays and objects)', async () => {
    const x = cg.fromArray([1, 2, 3]);
    let tmp: Tensor | undefined;
    const { a, list } = cg.scope(() => {
      tmp = cg.exp(x);
      const y = cg.add(tmp, 1);
      return { a: cg.mul(y, 2), list: [cg.neg(y), cg.sqrt(x)] };
    });
    expect(tmp!.isDisposed).toBe(true);
    expect(a.isDisposed).toBe(false);
    expect(list.every((t) => !t.isDisposed)).toBe(true);
    expect(x.isDisposed).toBe(false); // created outside
    expectArray(await a.toArray(), [1, 2, 3].map((v) => 2 * (Math.exp(v) + 1)));
    for (const t of [x, a, ...list]) t.dispose(); // no garbage left for the GC backstop to free mid-test later
  });

  it('keep() survives the scope; nested scopes hand returned tensors to the parent', async () => {
    let kept: Tensor | undefined;
    let inner: Tensor | undefined;
    let innerTmp: Tensor | undefined;
    const outerResult = cg.scope(() => {
      kept = cg.ones([4]).keep();
      inner = cg.scope(() => {
        innerTmp = cg.zeros([2]);
        return cg.full([2], 5);
      });
      expect(innerTmp!.isDisposed).toBe(true);
      expect(inner.isDisposed).toBe(false);
      return cg.zeros([1]);
    });
    expect(kept!.isDisposed).toBe(false);
    expect(inner!.isDisposed).toBe(true); // not returned by the outer scope
    expect(outerResult.isDisposed).toBe(false);
    kept!.dispose();
    outerResult.dispose();
  });

  it('disposes everything when the function throws, and rejects async functions in scope()', async () => {
    let t: Tensor | undefined;
    expect(() =>
      cg.scope(() => {
        t = cg.zeros([3]);
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(t!.isDisposed).toBe(true);
    expect(() => cg.scope(async () => cg.zeros([1]))).toThrow(/use scopeAsync\(\) for async functions/);
  });

  it('scopeAsync awaits and then disposes', async () => {
    let tmp: Tensor | undefined;
    const r = await cg.scopeAsync(async () => {
      tmp = cg.arange(5);
      const v = await tmp.toArray();
      return cg.fromArray(v.map((x) => x * 10));
    });
    expect(tmp!.isDisposed).toBe(true);
    expect(await r.toArray()).toEqual([0, 10, 20, 30, 40]);
    r.dispose();
  });
});

describe('live bytes', () => {
  it('return to the baseline after a scoped forward + backward, and buffers are reused', async () => {
    const base = await settled();
    const run = () =>
      cg.scope(() => {
        const x = cg.randn([17, 33], 1);
        x.requiresGrad = true;
        const w = cg.rand([33], 2);
        const loss = cg.mean(cg.square(cg.sub(cg.mul(cg.transpose(cg.transpose(x, 0, 1), 0, 1), w), cg.max(x, 1, { keepdim: true }))));
        cg.backward(loss);
        x.grad!.dispose(); // .grad is kept past scopes (it belongs to the leaf)
        return undefined;
      });
    run();
    const after1 = await settled();
    expect(after1.liveBytes).toBe(base.liveBytes);
    expect(after1.liveTensors).toBe(base.liveTensors);
    expect(after1.peakBytes).toBeGreaterThan(base.liveBytes);
    run();
    const after2 = await settled();
    expect(after2.liveBytes).toBe(base.liveBytes);
    expect(after2.allocatedBytes).toBe(after1.allocatedBytes); // the second run reused pooled buffers
  });

  it('return to the baseline without a scope once the outputs and .grad are disposed', async () => {
    const base = await settled();
    const x = cg.fromArray(new Float32Array(200).fill(0.25), [8, 25]);
    x.requiresGrad = true;
    const graph = [cg.sum(x, 0)];
    graph.push(cg.reshape(graph[0]!, [1, 25]));
    graph.push(cg.add(x, graph[1]!));
    graph.push(cg.sigmoid(graph[2]!));
    graph.push(cg.mul(graph[3]!, graph[3]!));
    graph.push(cg.sum(graph[4]!));
    cg.backward(graph[5]!);
    for (const t of [...graph, x.grad!, x]) t.dispose();
    const after = await settled();
    expect(after.liveTensors).toBe(base.liveTensors);
    expect(after.liveBytes).toBe(base.liveBytes);
  });

  it('views share storage: the buffer is freed only when the last view is disposed', async () => {
    const base = await settled();
    const x = cg.zeros([64, 64]);
    const v = cg.transpose(x, 0, 1);
    const withX = await settled();
    expect(withX.liveBytes).toBeGreaterThan(base.liveBytes);
    x.dispose();
    expect((await settled()).liveBytes).toBe(withX.liveBytes);
    const total = cg.sum(v);
    expect(await total.item()).toBe(0);
    total.dispose();
    v.dispose();
    expect((await settled()).liveBytes).toBe(base.liveBytes);
  });
});

describe('use after dispose', () => {
  it('throws an error naming the tensor in ops, views and readback', async () => {
    const x = cg.fromArray([1, 2, 3]);
    x.name = 'weights';
    x.dispose();
    x.dispose(); // idempotent
    const msg = /tensor #\d+ \(weights\) \[3\] was used after dispose\(\)/;
    expect(() => cg.exp(x)).toThrow(msg);
    expect(() => cg.add(x, 1)).toThrow(msg);
    expect(() => cg.reshape(x, [3, 1])).toThrow(msg);
    expect(() => cg.sum(x)).toThrow(msg);
    await expect(x.data()).rejects.toThrow(msg);
  });
});

function expectArray(actual: number[], expected: number[]) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(a).toBeCloseTo(expected[i]!, 4));
}
