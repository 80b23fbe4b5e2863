// What the optimizer kernels share: the workgroup size and entry point of the one-tensor kernels,
// the flat f32 run they update, and the slot machinery of the multi-tensor (foreach) kernels.
//
// One dispatch updates up to MAX_SLOTS parameters ("slots"), each in its own buffers: WebGPU binds
// a fixed number of buffers per dispatch, so the optimizer's parameters are taken a few at a time,
// as many as the device's storage-buffer limit allows (8 buffers: 2 SGD-with-momentum slots; 16: 5).
// Every slot starts on a workgroup boundary, so a workgroup finds its slot with a few compares on
// the per-slot table in the uniform block and runs exactly the per-element statements of the
// single-tensor kernel (optim.ts) (same operations in the same order, same f32 uniforms: the results
// are bit-identical to launchSgd / launchAdamW, which test/kernels/optim checks). Per-slot values
// (element count, offsets, SGD's first-step flag, AdamW's bias corrections) are uniform arrays.
import { MAX_WORKGROUPS, rt } from '../define-kernel';

export const WG = 256;
export const F32_READ = { type: 'f32', access: 'read' } as const;
export const F32_RW = { type: 'f32', access: 'rw' } as const;

export const MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.n) { return; }`;

/** A contiguous f32 run inside a buffer: `n` elements from element `offset`. */
export interface FlatF32 {
  buffer: GPUBuffer;
  offset: number;
}

/** Most parameters one multi-tensor dispatch updates. */
export const MAX_SLOTS = 8;

/** WGSL: the slot `s` of this workgroup and the element `i` within it (returns when past it). */
export function slotPrologue(k: number): string {
  return `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = linear_workgroup(wid, nwg);
  var s = 0u;
  for (var k = 1u; k < ${k}u; k++) { if (w >= p_wg_start(k)) { s = k; } }
  let i = (w - p_wg_start(s)) * ${WG}u + lid;
  if (i >= p_n(s)) { return; }`;
}

/** The per-slot branches: `body(j)` is the update written with slot j's bindings. */
export function slotSwitch(k: number, body: (j: number) => string): string {
  const cases = Array.from({ length: k }, (_, j) => `    case ${j}u: {${body(j)}\n    }`);
  return `  switch s {\n${cases.join('\n')}\n    default: {}\n  }\n}`;
}

export const slotBindings = <V extends { k: number }>(names: string[], extra: (name: string, v: V) => boolean = () => true) => {
  const out: Record<string, { type: 'f32'; access: 'read' | 'rw'; when: (v: V) => boolean }> = {};
  for (let j = 0; j < MAX_SLOTS; j++) {
    for (const name of names) {
      out[`${name}${j}`] = { type: 'f32', access: name === 'grad' ? 'read' : 'rw', when: (v: V) => j < v.k && extra(name, v) };
    }
  }
  return out;
};

export const SLOT_COUNTS = Array.from({ length: MAX_SLOTS }, (_, j) => j + 1);

/** How many slots of `buffersPerSlot` storage buffers fit one dispatch on this device, besides
 *  `shared` buffers bound once per dispatch. */
export function slotsPerDispatch(buffersPerSlot: number, shared = 0): number {
  const limit = rt().device.limits.maxStorageBuffersPerShaderStage - shared;
  return Math.max(1, Math.min(MAX_SLOTS, Math.floor(limit / buffersPerSlot)));
}

/** Split slots into dispatch-sized chunks: at most `k` each, no buffer written by one slot bound
 *  again in the same chunk (WebGPU rejects a writable binding aliased in one dispatch), and the
 *  workgroups of a chunk within the 2-D grid. Empty slots are dropped. */
export function chunkSlots<T extends { n: number }>(slots: T[], k: number, buffersOf: (s: T) => { read: GPUBuffer[]; rw: GPUBuffer[] }, perWorkgroup = WG): T[][] {
  const chunks: T[][] = [];
  let cur: T[] = [];
  let read = new Set<GPUBuffer>();
  let rw = new Set<GPUBuffer>();
  let wgs = 0;
  for (const s of slots) {
    if (s.n === 0) continue;
    const b = buffersOf(s);
    const w = Math.ceil(s.n / perWorkgroup);
    const clash = b.rw.some((x) => rw.has(x) || read.has(x)) || b.read.some((x) => rw.has(x));
    if (cur.length && (cur.length >= k || clash || wgs + w > MAX_WORKGROUPS * MAX_WORKGROUPS)) {
      chunks.push(cur);
      cur = [];
      read = new Set();
      rw = new Set();
      wgs = 0;
    }
    cur.push(s);
    for (const x of b.read) read.add(x);
    for (const x of b.rw) rw.add(x);
    wgs += w;
  }
  if (cur.length) chunks.push(cur);
  return chunks;
}

/** Per-slot workgroup starts of a chunk, and the chunk's total workgroups. */
export function wgStarts(chunk: { n: number }[]): { starts: number[]; total: number } {
  const starts: number[] = [];
  let total = 0;
  for (const s of chunk) {
    starts.push(total);
    total += Math.ceil(s.n / WG);
  }
  return { starts, total };
}
