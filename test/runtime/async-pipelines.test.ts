// Background compilation (`rt().asyncPipelines`, the default in a browser): a new kernel compiles
// with createComputePipelineAsync and the batches that use it are submitted once it is ready, in
// order with the uploads, readbacks and buffer destructions around them. Results equal the
// synchronous path's; a WGSL error still surfaces as a GpuError naming the kernel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import { GpuError } from '../../runtime/device';
import { type KernelDef, rt } from '../../runtime/runtime';

let serial = 0;
/** A kernel under a key not compiled before: out[i] = in[i] * p.scale + p.shift + `bias`. */
function freshAffine(bias: number, body = ''): KernelDef {
  return {
    key: `test.async.affine.${serial++}`,
    bindings: ['read', 'rw'],
    uniform: true,
    code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
struct P { n: u32, scale: f32, shift: f32, pad: u32 }
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  ${body}
  if (gid.x < p.n) { dst[gid.x] = src[gid.x] * p.scale + p.shift + ${bias.toFixed(1)}; }
}`,
  };
}
const run = (def: KernelDef, src: cg.Tensor, dst: cg.Tensor, scale: number, shift: number) =>
  rt().dispatch(def, [src.buffer, dst.buffer], new cg.Params().u(src.numel).f(scale, shift).bytes(), Math.ceil(src.numel / 64));

let before: boolean;
beforeAll(async () => {
  await cg.init();
  before = rt().asyncPipelines;
  rt().asyncPipelines = true;
});
afterAll(() => {
  rt().asyncPipelines = before;
});

describe('background pipeline compilation', () => {
  it('chains of new kernels, uploads, copies and clears between them give the synchronous results', async () => {
    const n = 300;
    const x = cg.fromArray(Array.from({ length: n }, (_, i) => i - 17));
    const a = cg.empty([n]);
    const b = cg.empty([n]);
    const k1 = freshAffine(1);
    const k2 = freshAffine(2);
    run(k1, x, a, 2, 0.5); // a = 2x + 1.5 (k1 still compiling: the batch is deferred)
    rt().copyBuffer(a.buffer, 0, b.buffer, 0, 4 * n); // b = a
    run(k2, b, a, -1, 0); // a = -b + 2
    rt().flush();
    rt().write(x.buffer, 0, new Float32Array(n).fill(3)); // after the queued batch: x = 3
    run(k1, x, b, 1, 0); // b = 3 + 1
    rt().clearBuffer(x.buffer, 0, 8); // x[0..1] = 0
    const [av, bv, xv] = await Promise.all([a.data(), b.data(), x.data()]);
    for (let i = 0; i < n; i++) {
      expect(av[i]).toBe(-(2 * (i - 17) + 1.5) + 2);
      expect(bv[i]).toBe(4);
      expect(xv[i]).toBe(i < 2 ? 0 : 3);
    }
  });

  it('uniforms of a deferred batch survive the next batch reusing the arena, and many batches queue in order', async () => {
    const n = 65;
    const x = cg.fromArray(Array.from({ length: n }, (_, i) => i));
    const y = cg.empty([n]);
    const k = freshAffine(0);
    for (let j = 0; j < 250; j++) run(k, j % 2 ? y : x, j % 2 ? x : y, 1, 1); // 250 dispatches: 3 batches
    const v = await x.data();
    for (let i = 0; i < n; i++) expect(v[i]).toBe(i + 250);
  });

  it('trim() while batches wait destroys the free buffers after them', async () => {
    const x = cg.fromArray([1, 2, 3]);
    const y = cg.empty([3]);
    const tmp = cg.fromArray([5, 5, 5]);
    run(freshAffine(0), tmp, y, 1, 0);
    tmp.dispose();
    rt().flush();
    rt().trim();
    run(freshAffine(0), y, x, 2, 0);
    expect([...(await x.data())]).toEqual([10, 10, 10]);
  });

  it('a WGSL error surfaces as a GpuError, and later work runs', async () => {
    const x = cg.fromArray([1, 2]);
    const y = cg.empty([2]);
    const bad = freshAffine(0, 'let q: u32 = 1.5;');
    run(bad, x, y, 1, 0);
    await expect(y.data()).rejects.toThrow(GpuError);
    // Dawn also reports the shader as an uncaptured validation error: whichever comes second
    // surfaces at the next sync point, as with synchronous compilation.
    await rt().sync().catch((e: Error) => expect(e.message).toContain(bad.key));
    run(freshAffine(1), x, y, 1, 0);
    expect([...(await y.data())]).toEqual([2, 3]);
  });
});
