// The runtime's bind-group cache: a dispatch whose buffers were bound before reuses the bind group
// (the uniform block is bound with a dynamic offset into the per-batch arena, so its parameters
// may differ), new buffers make a new one, and dropping the cache changes no result.
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
});
