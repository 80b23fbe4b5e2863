// The runtime's bind-group cache: a dispatch whose buffers were bound before reuses the bind group
// (the uniform block is bound with a dynamic offset into the per-batch arena, so its parameters
// may differ), new buffers make a new one, and dropping the cache changes no result. The pool's
// choice does not depend on release order, so a repeated step creates no bind groups.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import { type KernelDef, rt } from '../../runtime/runtime';

beforeAll(async () => {
  await cg.init();
});

// out[i] = in[i] * p.scale + p.shift over n elements.
const affine: KernelDef = {
  key: 'test.runtime.affine',
  bindings: ['read', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
struct P { n: u32, scale: f32, shift: f32, pad: u32 }
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < p.n) { dst[gid.x] = src[gid.x] * p.scale + p.shift; }
}`,
};

function run(src: cg.Tensor, dst: cg.Tensor, scale: number, shift: number): void {
  const params = new cg.Params().u(src.numel).f(scale, shift).bytes();
  rt().dispatch(affine, [src.buffer, dst.buffer], params, Math.ceil(src.numel / 64));
}

describe('bind-group cache', () => {
  it('reuses the bind group of the same buffers while the uniform parameters change', async () => {
    const a = cg.fromArray([1, 2, 3, 4, 5]);
    const b = cg.empty([5]);
    const c = cg.empty([5]);
    await rt().sync();
    const before = rt().stats().bindGroups;
    run(a, b, 2, 1); // b = 2a + 1
    run(b, c, 3, 0); // c = 3b: other buffers, a second bind group
    run(a, b, -1, 0.5); // the first pair again, other parameters, same batch: b = 0.5 − a
    expect(rt().stats().bindGroups - before).toBe(2);
    expect(Array.from(await c.data())).toEqual([9, 15, 21, 27, 33]);
    expect(Array.from(await b.data())).toEqual([-0.5, -1.5, -2.5, -3.5, -4.5]);
    // Later batches (another uniform arena may be bound) still compute with their own parameters.
    run(a, b, 10, 0);
    expect(Array.from(await b.data())).toEqual([10, 20, 30, 40, 50]);
    for (const t of [a, b, c]) t.dispose();
  });

  it('dropping the cache recreates bind groups and gives the same results', async () => {
    const a = cg.fromArray([0.25, -1, 7]);
    const b = cg.empty([3]);
    run(a, b, 4, -1);
    const first = Array.from(await b.data());
    rt().dropBindGroups();
    const before = rt().stats().bindGroups;
    run(a, b, 4, -1);
    expect(rt().stats().bindGroups - before).toBe(1);
    expect(Array.from(await b.data())).toEqual(first);
    expect(first).toEqual([0, -5, 27]);
    a.dispose();
    b.dispose();
  });

  it('a repeated step creates no bind groups: the pool hands out the same buffers whatever the release order', async () => {
    // A "step": temporaries allocated and freed in an order that differs from their allocation
    // order, across several submits. With a LIFO free list each repetition permuted which buffer
    // each temporary got, so bind-group keys (buffer ids) missed the cache.
    const x = cg.fromArray(Array.from({ length: 64 }, (_, i) => i / 7));
    const step = async (k: number) => {
      // As a training step: everything made inside the scope is freed before the step's last submit.
      cg.scope(() => {
        const ts: cg.Tensor[] = [];
        let t = x;
        for (let i = 0; i < 12; i++) {
          t = cg.mulScalar(cg.addScalar(t, 1), 0.5);
          ts.push(t);
          if (i % 5 === 4) rt().flush(); // several submits per step
        }
        // Release in an order that depends on the repetition.
        const order = ts.map((_, i) => i).sort((a, b) => ((a * (k + 3)) % 13) - ((b * (k + 3)) % 13));
        for (const i of order) ts[i]!.dispose();
      });
      await rt().sync();
    };
    await step(0);
    await step(1);
    const before = rt().stats().bindGroups;
    for (let k = 2; k < 6; k++) await step(k);
    expect(rt().stats().bindGroups - before).toBe(0);
    x.dispose();
  });

  it('the pool hands out its oldest free buffer of a size class', () => {
    const pool = rt().pool;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const bufs = [0, 1, 2, 3].map(() => pool.acquire(4000, usage, 'test.pool'));
    for (const i of [2, 0, 3, 1]) pool.release(bufs[i]!);
    pool.onSubmitted();
    const again = [0, 1, 2, 3].map(() => pool.acquire(4000, usage, 'test.pool'));
    expect(again).toEqual(bufs);
    for (const b of again) pool.release(b);
    pool.onSubmitted();
  });
});
