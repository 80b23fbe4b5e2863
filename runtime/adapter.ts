// What the acquired adapter can do, asked by the kernel choosers in kernels/: whether it is a CPU
// rasterizer, and which optional features (subgroups) it offers. Answers depend only on the
// adapter, so they are cached per adapter object.
import { rt } from './runtime';

/** A CPU rasterizer (lavapipe/llvmpipe, SwiftShader) rather than a GPU. Kernel choosers pick
 *  register-tiled, workgroup-memory-free kernels there and workgroup-memory tiles on real GPUs. */
export function isSoftwareAdapter(): boolean {
  const a = rt().gpu.adapter;
  // Asked on every conv and matmul launch: decided once per adapter.
  let v = softwareAdapters.get(a);
  if (v === undefined) {
    v = a.isFallbackAdapter || a.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${a.device} ${a.description}`);
    softwareAdapters.set(a, v);
  }
  return v;
}
const softwareAdapters = new WeakMap<object, boolean>();

/** Subgroups enabled and at least 8 invocations wide (lavapipe: exactly 8): what the subgroup
 *  kernels with 8-invocation workgroups (the subgroup matmul and conv GEMMs) need. */
export function hasSubgroups8(): boolean {
  const g = rt().gpu;
  return g.features.subgroups && (g.adapter.subgroupMinSize ?? 0) >= 8;
}
