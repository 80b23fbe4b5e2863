// Compiled kernels and their bind groups. A kernel compiles once per key (synchronously, or in
// the background where the runtime asks for it); a bind group is made once per kernel and set of
// bound buffers: creating one costs ~30 µs of host time in Dawn's Node bindings, reusing one ~1 µs.
import { createComputePipelineAsync, createComputePipelineSync, type GpuError } from './device';
import type { BindingWindows } from './binding-windows';
import type { UniformSlot } from './uniform-arena';

export type BindingKind = 'read' | 'rw';

/** A compute kernel: WGSL source plus the kinds of its storage bindings (binding 0..n-1). When
 *  `uniform` is set, the uniform block is bound at binding n. */
export interface KernelDef {
  /** Unique key of this specialisation (the cache key). Also the pipeline label. */
  key: string;
  code: string;
  bindings: BindingKind[];
  uniform?: boolean;
  entryPoint?: string;
}

export interface CompiledKernel {
  /** Undefined while a background compilation runs (or after it failed: `failed`). */
  pipeline: GPUComputePipeline | undefined;
  /** Resolves when a background compilation ends: true when it succeeded. */
  ready?: Promise<boolean>;
  failed?: GpuError;
  layout: GPUBindGroupLayout;
  /** Bind groups already made for this kernel: a trie over the ids of their buffers, then (with a
   *  uniform block) the arena's id and the block's size. Number keys, so a lookup builds no string. */
  groups: GroupTrie;
}

type GroupTrie = Map<number, GroupTrie | GPUBindGroup>;

/** Each buffer's id for the bind-group trie, kept on the buffer object itself: a property read is
 *  several times cheaper than a WeakMap lookup on Dawn's buffer objects, and this runs for every
 *  binding of every dispatch. */
const BUFFER_ID = Symbol('cellgpu.bufferId');
type Identified = GPUBuffer & { [BUFFER_ID]?: number };

/** Cached bind groups over all kernels; past this the cache starts over (stale entries, e.g. of
 *  destroyed buffers, are then dropped). */
const MAX_CACHED_BIND_GROUPS = 8192;

export class KernelCache {
  private kernels = new Map<string, CompiledKernel>();
  private nextBufferId = 1;
  private cachedGroups = 0;
  /** Bind groups created so far. */
  bindGroupsCreated = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly windows: BindingWindows,
    /** Keeps a compile error for the runtime's next flush or readback. */
    private readonly onCompileError: (err: GpuError) => void,
  ) {}

  /** Kernels compiled (or compiling). */
  get size(): number {
    return this.kernels.size;
  }

  /** The kernel of `def`, compiled on first use: in the background when `background` is set
   *  (`pipeline` stays undefined until `ready` resolves). */
  compile(def: KernelDef, background: boolean): CompiledKernel {
    let k = this.kernels.get(def.key);
    if (k) return k;
    const entries: GPUBindGroupLayoutEntry[] = def.bindings.map((kind, i) => ({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: kind === 'read' ? 'read-only-storage' : 'storage' },
    }));
    if (def.uniform) {
      // Dynamic offset into the per-batch arena, so that a bind group does not depend on where
      // this dispatch's parameters landed and can be reused.
      entries.push({ binding: def.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } });
    }
    const layout = this.device.createBindGroupLayout({ label: def.key, entries });
    const pipelineLayout = this.device.createPipelineLayout({ label: def.key, bindGroupLayouts: [layout] });
    if (background) {
      const kernel: CompiledKernel = { pipeline: undefined, layout, groups: new Map() };
      kernel.ready = createComputePipelineAsync(this.device, def.key, def.code, def.entryPoint ?? 'main', pipelineLayout).then(
        (p) => !!(kernel.pipeline = p),
        (err: GpuError) => {
          kernel.failed = err;
          this.onCompileError(err);
          return false;
        },
      );
      this.kernels.set(def.key, kernel);
      return kernel;
    }
    const pipeline = createComputePipelineSync(this.device, def.key, def.code, this.onCompileError, def.entryPoint ?? 'main', pipelineLayout);
    k = { pipeline, layout, groups: new Map() };
    this.kernels.set(def.key, k);
    return k;
  }

  /** The bind group of these buffers (and uniform arena) for kernel `k`, made once and cached.
   *  Every binding is checked against `limit` (the storage binding limit) when it is made. */
  bindGroup(def: KernelDef, k: CompiledKernel, buffers: GPUBuffer[], u: UniformSlot | undefined, limit: number): GPUBindGroup {
    // The key: each buffer's id, then the arena's id and the block's size (a fixed depth per
    // kernel). Walk the trie down to the map that holds the last part.
    const total = buffers.length + (u ? 2 : 0);
    let slot = k.groups;
    for (let i = 0; i < total - 1; i++) {
      const part = this.keyPart(buffers, u, i);
      let next = slot.get(part) as GroupTrie | undefined;
      if (!next) slot.set(part, (next = new Map()));
      slot = next;
    }
    const last = total === 0 ? 0 : this.keyPart(buffers, u, total - 1);
    let group = slot.get(last) as GPUBindGroup | undefined;
    if (group) return group;
    const entries: GPUBindGroupEntry[] = buffers.map((b, i) => {
      const w = this.windows.get(b);
      if ((w?.size ?? b.size) > limit) {
        throw new Error(`kernel '${def.key}': binding ${i} is ${w?.size ?? b.size} bytes (${b.label}), over the ${limit}-byte storage binding limit; its launcher must split the work (kernels/large.ts)`);
      }
      return { binding: i, resource: w ? { buffer: w.buffer, offset: w.offset, size: w.size } : { buffer: b } };
    });
    if (u) entries.push({ binding: buffers.length, resource: { buffer: u.buffer, offset: 0, size: u.size } });
    group = this.device.createBindGroup({ label: def.key, layout: k.layout, entries });
    this.bindGroupsCreated++;
    if (++this.cachedGroups > MAX_CACHED_BIND_GROUPS) this.dropBindGroups();
    slot.set(last, group);
    return group;
  }

  private keyPart(buffers: GPUBuffer[], u: UniformSlot | undefined, i: number): number {
    if (i < buffers.length) return this.bufferId(buffers[i]!);
    return i === buffers.length ? this.bufferId(u!.buffer) : u!.size;
  }

  private bufferId(b: GPUBuffer): number {
    const o = b as Identified;
    return o[BUFFER_ID] ?? (o[BUFFER_ID] = this.nextBufferId++);
  }

  /** Forget every cached bind group (they hold references to their buffers). */
  dropBindGroups(): void {
    for (const k of this.kernels.values()) k.groups.clear();
    this.cachedGroups = 0;
  }
}
