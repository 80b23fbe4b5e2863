// The execution engine: records every op into one shared command encoder and compute pass and
// submits in batches, so nothing in forward, backward or an optimizer step waits for the GPU.
// Pipelines are compiled once per kernel key and cached; per-dispatch parameters are packed into a
// per-batch uniform arena; buffers come from the pool and go back to it only after submit.
// With `asyncPipelines` (the default in a browser) a new kernel compiles in the background and the
// batches that use it are submitted, in order, once it is ready (see "Background compilation").
import { adapterSlug, createComputePipelineAsync, createComputePipelineSync, getGpu, GpuError, listDawnAdapters, openGpu, type DeviceOptions, type Gpu } from './device';
import { BufferPool, type PoolStats } from './pool';
import { DispatchProfiler, type ProfileReport } from './profiler';

export type BindingKind = 'read' | 'rw';

/** A byte range of a buffer bound as one storage binding. */
export interface BufferWindow {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

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

interface CompiledKernel {
  /** Undefined while a background compilation runs (or after it failed: `failed`). */
  pipeline: GPUComputePipeline | undefined;
  /** Resolves when a background compilation ends: true when it succeeded. */
  ready?: Promise<boolean>;
  failed?: GpuError;
  layout: GPUBindGroupLayout;
  /** Bind groups already made for this kernel, keyed by the ids of their buffers (and the uniform
   *  binding's size): creating one costs ~30 µs of host time on Dawn, reusing one ~0.5 µs. */
  groups: Map<string, GPUBindGroup>;
}

/** Maximum workgroups per dimension in WebGPU; larger 1-D dispatches are folded into x·y grids. */
export const MAX_WORKGROUPS = 65535;

/** WGSL snippet: linear workgroup index of a folded 1-D dispatch. */
export const WGSL_LINEAR_WORKGROUP = /* wgsl */ `
fn linear_workgroup(wid: vec3u, nwg: vec3u) -> u32 { return wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y; }`;

/** WGSL snippet: a quiet NaN (a \`let\`, because constant-evaluated NaN is a compile error). */
export const WGSL_NAN = /* wgsl */ `
fn nan_f32() -> f32 { let bits = 0x7fc00000u; return bitcast<f32>(bits); }`;

/** Commands recorded for a batch that waits for background compilations; replayed into a fresh
 *  encoder when they are ready. */
class Replay {
  private pass: GPUComputePassEncoder | undefined;
  constructor(readonly encoder: GPUCommandEncoder) {}
  computePass(): GPUComputePassEncoder {
    this.pass ??= this.encoder.beginComputePass({ label: 'cellgpu.pass' });
    return this.pass;
  }
  plain(): GPUCommandEncoder {
    this.pass?.end();
    this.pass = undefined;
    return this.encoder;
  }
}
type DeferredCommand = (r: Replay) => void;

export interface RuntimeStats extends PoolStats {
  dispatches: number;
  /** Bind groups created (a dispatch whose buffers were seen before reuses a cached one). */
  bindGroups: number;
  submits: number;
  pipelines: number;
  readbacks: number;
  /** Milliseconds spent waiting for the device in read() and sync() (host time = wall - this). */
  waitMs: number;
}

const UNIFORM_ARENA_BYTES = 64 * 1024;
const MAX_DISPATCHES_PER_BATCH = 96;
/** Cached bind groups over all kernels; past this the cache starts over (stale entries, e.g. of
 *  destroyed buffers, are then dropped). */
const MAX_CACHED_BIND_GROUPS = 8192;

export class Runtime {
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  private kernels = new Map<string, CompiledKernel>();
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private batchDispatches = 0;
  private arenaCpu = new Uint8Array(UNIFORM_ARENA_BYTES);
  private arenaGpu: GPUBuffer | undefined;
  private arenaUsed = 0;
  private readonly uniformAlign: number;
  private compileError: GpuError | undefined;
  private counters = { dispatches: 0, bindGroups: 0, submits: 0, readbacks: 0, waitMs: 0 };
  /** Callbacks run right after the next submit (deferred frees). */
  private afterSubmit: (() => void)[] = [];
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private cachedGroups = 0;
  private dynamicOffset = [0];
  /** Set while a profile() region runs. */
  private profiler: DispatchProfiler | undefined;
  /** Binding windows (see `bindingWindow`): handle -> the window it binds, and per buffer the
   *  handles made so far (interned, so that bind groups of a window are cached like any other). */
  private windows = new WeakMap<GPUBuffer, BufferWindow>();
  private windowHandles = new WeakMap<GPUBuffer, Map<string, GPUBuffer>>();
  private bindingLimitOverride: number | undefined;
  /**
   * Compile new kernels with createComputePipelineAsync and submit the batches that use them once
   * they are ready, instead of compiling each on first use before recording goes on. On by default
   * in a browser (Chromium compiles on worker threads, so a first inference's kernels compile
   * concurrently); off in Node unless CELLGPU_ASYNC_PIPELINES=1 (slower with Dawn's Node binding).
   */
  asyncPipelines: boolean;
  /** Background compilation: the submissions (batches, uploads, buffer destructions) waiting, in
   *  order, for kernels to compile; undefined when none is waiting. */
  private queued: Promise<void> | undefined;
  private queuedJobs = 0;
  /** The current batch, once it dispatched a kernel that is still compiling: its commands before
   *  that point (finished), the commands since, and the compilations it waits for. */
  private deferredHead: GPUCommandBuffer | undefined;
  private deferred: DeferredCommand[] | undefined;
  private waitsFor = new Set<Promise<boolean>>();

  constructor(readonly gpu: Gpu) {
    this.device = gpu.device;
    this.pool = new BufferPool(this.device);
    this.uniformAlign = Math.max(16, this.device.limits.minUniformBufferOffsetAlignment);
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
    this.asyncPipelines = gpu.runtime === 'navigator.gpu' || env?.CELLGPU_ASYNC_PIPELINES === '1';
  }

  // ---- binding windows -----------------------------------------------------------------------

  /** The largest storage binding in bytes: the device's maxStorageBufferBindingSize, or the value
   *  set by `setBindingLimitForTests`. Launchers split work whose operands exceed it (see
   *  kernels/large.ts); buffers themselves may be as large as maxBufferSize. */
  get bindingLimit(): number {
    return this.bindingLimitOverride ?? this.gpu.limits.maxStorageBufferBindingSize;
  }

  /** Tests: pretend the storage binding limit is `bytes` (a power of two, at least 4 KiB), so that
   *  the chunked paths of large tensors run on small ones; `undefined` restores the device's. */
  setBindingLimitForTests(bytes: number | undefined): void {
    if (bytes !== undefined) {
      if (bytes < 4096 || 2 ** Math.round(Math.log2(bytes)) !== bytes) throw new Error(`setBindingLimitForTests: ${bytes} is not a power of two >= 4096`);
      if (bytes > this.gpu.limits.maxStorageBufferBindingSize) throw new Error(`setBindingLimitForTests: ${bytes} is over the device's limit`);
    }
    this.bindingLimitOverride = bytes;
    this.dropBindGroups(); // re-check every binding against the new limit
  }

  /** A handle that binds `byteSize` bytes of `buffer` from `byteOffset` (a multiple of
   *  minStorageBufferOffsetAlignment): pass it wherever a kernel takes a GPUBuffer, with element
   *  offsets relative to the window. Handles are interned per (buffer, offset, size). Only
   *  dispatch, copyBuffer, clearBuffer, read and write understand them; never map or destroy one. */
  bindingWindow(buffer: GPUBuffer, byteOffset: number, byteSize: number): GPUBuffer {
    const inner = this.windows.get(buffer);
    if (inner) return this.bindingWindow(inner.buffer, inner.offset + byteOffset, byteSize);
    if (byteOffset === 0 && byteSize === buffer.size) return buffer;
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    if (byteOffset % align !== 0) throw new Error(`bindingWindow: offset ${byteOffset} is not a multiple of ${align}`);
    if (byteOffset + byteSize > buffer.size || byteSize <= 0 || byteSize % 4 !== 0) {
      throw new Error(`bindingWindow: [${byteOffset}, +${byteSize}) does not fit a ${buffer.size}-byte buffer`);
    }
    let handles = this.windowHandles.get(buffer);
    if (!handles) this.windowHandles.set(buffer, (handles = new Map()));
    const key = `${byteOffset}:${byteSize}`;
    let h = handles.get(key);
    if (!h) {
      h = { size: byteSize, usage: buffer.usage, label: `${buffer.label}@${byteOffset}+${byteSize}` } as unknown as GPUBuffer;
      this.windows.set(h, { buffer, offset: byteOffset, size: byteSize });
      handles.set(key, h);
    }
    return h;
  }

  /** The buffer, offset and size a (possibly window) handle binds. */
  resolveBinding(b: GPUBuffer): BufferWindow {
    return this.windows.get(b) ?? { buffer: b, offset: 0, size: b.size };
  }

  // ---- kernels -------------------------------------------------------------------------------

  private compile(def: KernelDef): CompiledKernel {
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
    if (this.asyncPipelines && !this.profiler) {
      const kernel: CompiledKernel = { pipeline: undefined, layout, groups: new Map() };
      kernel.ready = createComputePipelineAsync(this.device, def.key, def.code, def.entryPoint ?? 'main', pipelineLayout).then(
        (p) => !!(kernel.pipeline = p),
        (err: GpuError) => !(this.compileError ??= kernel.failed = err),
      );
      this.kernels.set(def.key, kernel);
      return kernel;
    }
    const pipeline = createComputePipelineSync(
      this.device,
      def.key,
      def.code,
      (err) => (this.compileError ??= err),
      def.entryPoint ?? 'main',
      pipelineLayout,
    );
    k = { pipeline, layout, groups: new Map() };
    this.kernels.set(def.key, k);
    return k;
  }

  // ---- recording -----------------------------------------------------------------------------

  private ensurePass(): GPUComputePassEncoder {
    this.encoder ??= this.device.createCommandEncoder({ label: 'cellgpu.batch' });
    this.pass ??= this.encoder.beginComputePass({ label: 'cellgpu.pass' });
    return this.pass;
  }

  /** The encoder with no compute pass open, for copies and clears. */
  private commandEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
    this.encoder ??= this.device.createCommandEncoder({ label: 'cellgpu.batch' });
    return this.encoder;
  }

  private writeUniform(data: ArrayBufferView): { buffer: GPUBuffer; offset: number; size: number } {
    const size = Math.ceil(data.byteLength / 16) * 16;
    if (size > UNIFORM_ARENA_BYTES) throw new Error(`uniform block of ${data.byteLength} bytes exceeds the arena`);
    let offset = Math.ceil(this.arenaUsed / this.uniformAlign) * this.uniformAlign;
    if (offset + size > UNIFORM_ARENA_BYTES) {
      this.flush();
      offset = 0;
    }
    this.arenaGpu ??= this.pool.acquire(UNIFORM_ARENA_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'cellgpu.uniforms');
    this.arenaCpu.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    this.arenaUsed = offset + size;
    return { buffer: this.arenaGpu, offset, size };
  }

  /**
   * Record one dispatch. `workgroups` as a number is a 1-D count, folded into a 2-D grid when it
   * exceeds 65,535 (kernels use `linear_workgroup`).
   */
  dispatch(def: KernelDef, buffers: GPUBuffer[], params: ArrayBufferView | undefined, workgroups: number | [number, number?, number?]): void {
    if (buffers.length !== def.bindings.length) {
      throw new Error(`kernel '${def.key}': ${buffers.length} buffers bound, ${def.bindings.length} declared`);
    }
    if (!!params !== !!def.uniform) throw new Error(`kernel '${def.key}': uniform params ${params ? 'given but not declared' : 'declared but not given'}`);
    const k = this.compile(def);
    if (k.failed) throw k.failed;
    const u = params ? this.writeUniform(params) : undefined; // may flush: do it before opening the pass
    const bindGroup = this.bindGroup(def, k, buffers, u);
    let [x, y, z] = typeof workgroups === 'number' ? [workgroups, 1, 1] : [workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1];
    if (x > MAX_WORKGROUPS && y === 1 && z === 1) {
      y = Math.ceil(x / MAX_WORKGROUPS);
      x = Math.ceil(x / y);
      if (y > MAX_WORKGROUPS) throw new Error(`kernel '${def.key}': ${x * y} workgroups exceed the 2-D grid`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    if (this.profiler) return this.profiledDispatch(def, k, bindGroup, u, x, y, z);
    if (!k.pipeline || this.deferred) {
      if (!k.pipeline) this.waitsFor.add(k.ready!);
      const offset = u ? { offset: u.offset } : undefined;
      this.defer((r) => this.encodeDispatch(r.computePass(), k, bindGroup, offset, x, y, z));
    } else {
      this.encodeDispatch(this.ensurePass(), k, bindGroup, u, x, y, z);
    }
    this.counters.dispatches++;
    if (++this.batchDispatches >= MAX_DISPATCHES_PER_BATCH) this.flush();
  }

  private encodeDispatch(pass: GPUComputePassEncoder, k: CompiledKernel, bindGroup: GPUBindGroup, u: { offset: number } | undefined, x: number, y: number, z: number): void {
    if (!k.pipeline) throw k.failed ?? new Error('cellgpu: a kernel was encoded before it compiled');
    pass.setPipeline(k.pipeline);
    if (u) {
      this.dynamicOffset[0] = u.offset;
      pass.setBindGroup(0, bindGroup, this.dynamicOffset);
    } else {
      pass.setBindGroup(0, bindGroup);
    }
    pass.dispatchWorkgroups(x, y, z);
  }

  /** Under profile(): the dispatch in a pass of its own, bracketed by timestamps when available. */
  private profiledDispatch(def: KernelDef, k: CompiledKernel, bindGroup: GPUBindGroup, u: { offset: number } | undefined, x: number, y: number, z: number): void {
    const prof = this.profiler!;
    const t0 = performance.now();
    if (prof.batchFull) this.flush();
    const timestampWrites = prof.timestampWrites(def.key);
    const pass = this.commandEncoder().beginComputePass({ label: def.key, ...(timestampWrites ? { timestampWrites } : {}) });
    this.encodeDispatch(pass, k, bindGroup, u, x, y, z);
    pass.end();
    this.counters.dispatches++;
    prof.dispatched(def.key, performance.now() - t0);
    if (++this.batchDispatches >= MAX_DISPATCHES_PER_BATCH) this.flush();
  }

  /**
   * Profile everything `fn` records: per kernel, calls, host dispatch time and (with
   * `timestamp-query`) device time, plus the region's dispatches, submits, readbacks and pipeline
   * compilations. Waits for the device at the end; regions do not nest.
   */
  async profile<T>(fn: () => T | Promise<T>): Promise<{ result: T; report: ProfileReport }> {
    if (this.profiler) throw new Error('profile(): a profiled region is already running (regions do not nest)');
    this.flush();
    await this.queued; // profiled regions compile synchronously and dispatch one pass at a time
    const prof = new DispatchProfiler(this.device, this.gpu.features.timestampQuery);
    const before = this.stats();
    const t0 = performance.now();
    this.profiler = prof;
    try {
      const result = await fn();
      this.flush();
      const tw = performance.now();
      await this.device.queue.onSubmittedWorkDone();
      prof.waitMs += performance.now() - tw;
      const report = await prof.finish(performance.now() - t0, before, this.stats());
      return { result, report };
    } finally {
      this.profiler = undefined;
    }
  }

  /** The bind group of these buffers (and uniform arena) for kernel `k`, made once and cached. */
  private bindGroup(def: KernelDef, k: CompiledKernel, buffers: GPUBuffer[], u: { buffer: GPUBuffer; size: number } | undefined): GPUBindGroup {
    let key = '';
    for (const b of buffers) key += `${this.bufferId(b)},`;
    if (u) key += `u${this.bufferId(u.buffer)}:${u.size}`;
    let group = k.groups.get(key);
    if (group) return group;
    const limit = this.bindingLimit;
    const entries: GPUBindGroupEntry[] = buffers.map((b, i) => {
      const w = this.windows.get(b);
      if ((w?.size ?? b.size) > limit) {
        throw new Error(`kernel '${def.key}': binding ${i} is ${w?.size ?? b.size} bytes (${b.label}), over the ${limit}-byte storage binding limit; its launcher must split the work (kernels/large.ts)`);
      }
      return { binding: i, resource: w ? { buffer: w.buffer, offset: w.offset, size: w.size } : { buffer: b } };
    });
    if (u) entries.push({ binding: buffers.length, resource: { buffer: u.buffer, offset: 0, size: u.size } });
    group = this.device.createBindGroup({ label: def.key, layout: k.layout, entries });
    this.counters.bindGroups++;
    if (++this.cachedGroups > MAX_CACHED_BIND_GROUPS) this.dropBindGroups();
    k.groups.set(key, group);
    return group;
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  /** Forget every cached bind group (they hold references to their buffers). */
  dropBindGroups(): void {
    for (const k of this.kernels.values()) k.groups.clear();
    this.cachedGroups = 0;
  }

  /** Destroy the pool's free buffers and the bind groups that may name them. */
  trim(): void {
    this.dropBindGroups();
    // Batches still waiting for compilations may use the free buffers: destroy after them.
    this.pool.trim(this.queued ? (bufs) => this.enqueue(() => bufs.forEach((b) => b.destroy())) : undefined);
  }

  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    const s = this.resolveBinding(src);
    const d = this.resolveBinding(dst);
    const copy = (e: GPUCommandEncoder) => e.copyBufferToBuffer(s.buffer, s.offset + srcOffset, d.buffer, d.offset + dstOffset, bytes);
    if (this.deferred) this.defer((r) => copy(r.plain()));
    else copy(this.commandEncoder());
  }

  clearBuffer(buf: GPUBuffer, offset = 0, size?: number): void {
    const w = this.resolveBinding(buf);
    const clear = (e: GPUCommandEncoder) => e.clearBuffer(w.buffer, w.offset + offset, size ?? w.size - offset);
    if (this.deferred) this.defer((r) => clear(r.plain()));
    else clear(this.commandEncoder());
  }

  // ---- background compilation -----------------------------------------------------------------

  /** Record a command of a batch that waits for a compilation; from the first one on, the batch's
   *  commands are kept and replayed at submission (the ones before it are finished as they are). */
  private defer(cmd: DeferredCommand): void {
    if (!this.deferred) {
      if (this.encoder) {
        this.pass?.end();
        this.pass = undefined;
        this.deferredHead = this.encoder.finish();
        this.encoder = undefined;
      }
      this.deferred = [];
    }
    this.deferred.push(cmd);
  }

  /** Run `job` after every submission queued before it (a failure is kept for the next flush). */
  private enqueue(job: () => void | Promise<void>): void {
    this.queuedJobs++;
    const done = (this.queued ?? Promise.resolve())
      .then(job)
      .catch((err: unknown) => void (this.compileError ??= err instanceof GpuError ? err : new GpuError(String((err as Error)?.message ?? err))))
      .finally(() => {
        if (--this.queuedJobs === 0) this.queued = undefined;
      });
    this.queued = done;
  }

  /** Upload host data now (queue timeline; ordered before the batch being recorded). */
  write(buf: GPUBuffer, offset: number, data: ArrayBufferView): void {
    const w = this.resolveBinding(buf);
    buf = w.buffer;
    offset += w.offset;
    const pad = data.byteLength % 4;
    if (this.queued) {
      // After the batches waiting for compilations: a copy, as the caller may reuse its memory.
      const copy = new Uint8Array(data.byteLength + (pad ? 4 - pad : 0));
      copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      const target = buf;
      this.enqueue(() => this.device.queue.writeBuffer(target, offset, copy));
    } else if (pad === 0) {
      this.device.queue.writeBuffer(buf, offset, data.buffer, data.byteOffset, data.byteLength);
    } else {
      const padded = new Uint8Array(data.byteLength + 4 - pad);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.device.queue.writeBuffer(buf, offset, padded);
    }
  }

  /** Run `fn` after the current batch has been submitted (used for deferred buffer release). */
  onSubmit(fn: () => void): void {
    this.afterSubmit.push(fn);
  }

  /** Submit everything recorded so far. Cheap when nothing is recorded. */
  flush(): void {
    this.throwCompileError();
    this.gpu.throwIfFailed();
    if (!this.encoder && !this.deferred) return;
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
    if (this.deferred || this.queued) {
      this.queueBatch();
    } else {
      if (this.arenaGpu) {
        this.device.queue.writeBuffer(this.arenaGpu, 0, this.arenaCpu, 0, this.arenaUsed);
      }
      this.profiler?.resolve(this.encoder!);
      this.device.queue.submit([this.encoder!.finish()]);
      this.profiler?.submitted();
    }
    this.counters.submits++;
    this.encoder = undefined;
    this.batchDispatches = 0;
    if (this.arenaGpu) {
      this.pool.release(this.arenaGpu);
      this.arenaGpu = undefined;
      this.arenaUsed = 0;
    }
    this.pool.onSubmitted();
    const cbs = this.afterSubmit;
    this.afterSubmit = [];
    for (const cb of cbs) cb();
  }

  private throwCompileError(): void {
    if (this.compileError) {
      const e = this.compileError;
      this.compileError = undefined;
      throw e;
    }
  }

  /** Submit the current batch after the queued submissions and the compilations it waits for. Its
   *  uniforms are copied now: the arena is reused by the next batch. */
  private queueBatch(): void {
    const head = this.deferredHead;
    const finished = this.encoder?.finish();
    const commands = this.deferred ?? [];
    const waits = [...this.waitsFor];
    const arena = this.arenaGpu;
    const uniforms = arena ? this.arenaCpu.slice(0, this.arenaUsed) : undefined;
    this.deferredHead = undefined;
    this.deferred = undefined;
    this.waitsFor.clear();
    this.enqueue(async () => {
      // A batch whose kernel failed to compile is dropped (the error is already kept for the next
      // flush or readback, as a failed synchronous compile's is).
      if (waits.length && (await Promise.all(waits)).includes(false)) return;
      const buffers = [head, finished].filter((b) => b !== undefined);
      if (commands.length) {
        const r = new Replay(this.device.createCommandEncoder({ label: 'cellgpu.batch' }));
        for (const c of commands) c(r);
        buffers.push(r.plain().finish());
      }
      if (arena) this.device.queue.writeBuffer(arena, 0, uniforms!);
      this.device.queue.submit(buffers);
    });
  }

  /** Read bytes back: the only place the CPU waits for the GPU. */
  async read(src: GPUBuffer, byteOffset: number, byteLength: number): Promise<ArrayBuffer> {
    this.counters.readbacks++;
    const w = this.resolveBinding(src);
    src = w.buffer;
    byteOffset += w.offset;
    const start = byteOffset - (byteOffset % 4);
    const len = Math.ceil((byteOffset + byteLength - start) / 4) * 4;
    const staging = this.pool.acquire(len, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'cellgpu.readback');
    this.copyBuffer(src, start, staging, 0, len);
    this.flush();
    const tw = performance.now();
    await this.queued;
    this.throwCompileError();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, len);
      const waited = performance.now() - tw;
      this.counters.waitMs += waited;
      if (this.profiler) this.profiler.waitMs += waited;
    } catch (err) {
      this.gpu.throwIfFailed();
      throw err;
    }
    const out = staging.getMappedRange(0, len).slice(byteOffset - start, byteOffset - start + byteLength);
    staging.unmap();
    this.pool.release(staging);
    this.gpu.throwIfFailed();
    return out;
  }

  /** Wait until all submitted work finished (benchmarks and tests only). */
  async sync(): Promise<void> {
    this.flush();
    const tw = performance.now();
    await this.queued;
    this.throwCompileError();
    await this.device.queue.onSubmittedWorkDone();
    this.counters.waitMs += performance.now() - tw;
    this.gpu.throwIfFailed();
  }

  stats(): RuntimeStats {
    return { ...this.pool.getStats(), ...this.counters, pipelines: this.kernels.size };
  }
}

let runtime: Runtime | undefined;
let initPromise: Promise<Runtime> | undefined;

/** Acquire the GPU and create the runtime; every op needs this done once (it is idempotent). */
export function init(options?: DeviceOptions): Promise<Runtime> {
  initPromise ??= getGpu(options).then((gpu) => (runtime = new Runtime(gpu)));
  return initPromise;
}

// ---- several devices --------------------------------------------------------------------------
// Ops record on the *current* runtime, `rt()`: the process-wide one unless `withDevice` switched
// it. A tensor remembers the runtime that allocated it (its storage's pool, its readback), and
// tensors of different devices must never meet in one op (WebGPU rejects the foreign buffer).

const devices: Runtime[] = [];

/**
 * The process-wide runtime plus `n - 1` more devices (opened once and reused by later calls), each
 * its own GPUDevice, queue and buffer pool. Device 0 is `init()`'s. In Node, when Dawn lists at
 * least n - 1 other adapters of device 0's backend with distinct names (and, beside a GPU, no CPU
 * rasterizer), device i opens the i-th of them; otherwise every device is another GPUDevice on
 * device 0's adapter. Identical GPUs share a name and cannot be told apart (Dawn opens adapters by
 * name), so N identical GPUs give N devices on the first.
 */
export async function openDevices(n: number, options: DeviceOptions = {}): Promise<readonly Runtime[]> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`openDevices: ${n} devices; need a positive integer`);
  const first = await init(options);
  if (devices.length === 0) devices.push(first);
  if (devices.length >= n) return devices.slice(0, n);
  const others = await otherAdapters(first);
  while (devices.length < n) {
    const other = others.length >= n - 1 ? others[devices.length - 1] : undefined;
    const flags = other ? [...(options.dawnFlags ?? []), `adapter=${other.name}`, `backend=${other.backend}`] : options.dawnFlags;
    devices.push(new Runtime(await openGpu({ ...options, dawnFlags: flags })));
  }
  return devices.slice(0, n);
}

/** The adapters Dawn lists on device 0's backend, other than device 0's, one per distinct name;
 *  CPU rasterizers only when device 0 is one (a GPU's data-parallel partner must be a GPU). */
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|warp|basic render/i;

async function otherAdapters(first: Runtime): Promise<{ backend: string; name: string }[]> {
  if (first.gpu.runtime !== 'dawn.node') return [];
  const all = await listDawnAdapters();
  const own = all.find((a) => adapterSlug(a.name) === first.gpu.adapter.device);
  if (!own) return [];
  const names = new Set<string>([own.name]);
  const out: { backend: string; name: string }[] = [];
  for (const a of all) {
    if (a.backend !== own.backend || names.has(a.name) || (SOFTWARE.test(a.name) && !SOFTWARE.test(own.name))) continue;
    names.add(a.name);
    out.push(a);
  }
  return out;
}

/**
 * Run `fn` with `device` as the current runtime, then submit what it recorded there. With an async
 * `fn` the switch lasts until its promise settles, across its awaits: async sections must not run
 * concurrently (await one before starting the next), or the other's ops would land on this device.
 * Sections nest (an inner one restores the outer device when it ends).
 */
export function withDevice<T>(device: Runtime, fn: () => T): T {
  const prev = runtime;
  runtime = device;
  let result: T;
  try {
    result = fn();
  } catch (err) {
    runtime = prev;
    throw err;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      runtime = prev;
      device.flush();
    }) as T;
  }
  runtime = prev;
  device.flush();
  return result;
}

/** The runtime; throws if `init()` has not completed. */
export function rt(): Runtime {
  if (!runtime) throw new Error('cellgpu is not initialised: `await init()` (from core) before creating tensors');
  return runtime;
}

/** Uniform block builder: fields are 4 bytes each, in declaration order, padded to 16 bytes. */
export class Params {
  private buf: ArrayBuffer;
  private u32: Uint32Array;
  private i32: Int32Array;
  private f32: Float32Array;
  private n = 0;
  constructor(capacityWords = 64) {
    this.buf = new ArrayBuffer(capacityWords * 4);
    this.u32 = new Uint32Array(this.buf);
    this.i32 = new Int32Array(this.buf);
    this.f32 = new Float32Array(this.buf);
  }
  private grow(): void {
    const next = new ArrayBuffer(this.buf.byteLength * 2);
    new Uint8Array(next).set(new Uint8Array(this.buf));
    this.buf = next;
    this.u32 = new Uint32Array(next);
    this.i32 = new Int32Array(next);
    this.f32 = new Float32Array(next);
  }
  u(...v: number[]): this {
    for (const x of v) {
      if (this.n >= this.u32.length) this.grow();
      this.u32[this.n++] = x >>> 0;
    }
    return this;
  }
  i(...v: number[]): this {
    for (const x of v) {
      if (this.n >= this.u32.length) this.grow();
      this.i32[this.n++] = x | 0;
    }
    return this;
  }
  f(...v: number[]): this {
    for (const x of v) {
      if (this.n >= this.u32.length) this.grow();
      this.f32[this.n++] = x;
    }
    return this;
  }
  /** Pad with zeros to the next multiple of `words` 4-byte words (vec4 alignment = 4). */
  align(words = 4): this {
    while (this.n % words) this.u(0);
    return this;
  }
  /** Fixed-length u32 array field of `len` words (pads with `fill`). */
  uArray(values: readonly number[], len: number, fill = 0): this {
    for (let i = 0; i < len; i++) this.u(i < values.length ? values[i]! : fill);
    return this;
  }
  iArray(values: readonly number[], len: number, fill = 0): this {
    for (let i = 0; i < len; i++) this.i(i < values.length ? values[i]! : fill);
    return this;
  }
  bytes(): Uint8Array {
    const words = Math.max(4, Math.ceil(this.n / 4) * 4);
    while (this.n < words) this.u(0);
    return new Uint8Array(this.buf, 0, words * 4);
  }
}
