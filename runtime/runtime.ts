// The execution engine: records every op into one shared command encoder and compute pass and
// submits in batches, so nothing in forward, backward or an optimizer step waits for the GPU.
// Pipelines and bind groups are cached (kernel-cache.ts); per-dispatch parameters go into a
// per-batch uniform arena (uniform-arena.ts); buffers come from the pool and go back to it only
// after submit. With `asyncPipelines` (the default in a browser) a new kernel compiles in the
// background and the batches that use it are submitted, in order, once it is ready
// (background-submissions.ts).
import { getGpu, GpuError, type DeviceOptions, type Gpu } from './device';
import { BufferPool, type PoolStats } from './pool';
import { DispatchProfiler, type ProfileReport } from './profiler';
import { BindingWindows, type BufferWindow } from './binding-windows';
import { KernelCache, type CompiledKernel, type KernelDef } from './kernel-cache';
import { UniformArena, type UniformSlot } from './uniform-arena';
import { BackgroundSubmissions, type DeferredCommand } from './background-submissions';

export type { BufferWindow } from './binding-windows';
export type { BindingKind, KernelDef } from './kernel-cache';
export { Params } from './params';

/** Maximum workgroups per dimension in WebGPU; larger 1-D dispatches are folded into x·y grids. */
export const MAX_WORKGROUPS = 65535;

/** WGSL snippet: linear workgroup index of a folded 1-D dispatch. */
export const WGSL_LINEAR_WORKGROUP = /* wgsl */ `
fn linear_workgroup(wid: vec3u, nwg: vec3u) -> u32 { return wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y; }`;

/** WGSL snippet: a quiet NaN (a \`let\`, because constant-evaluated NaN is a compile error). */
export const WGSL_NAN = /* wgsl */ `
fn nan_f32() -> f32 { let bits = 0x7fc00000u; return bitcast<f32>(bits); }`;

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

const MAX_DISPATCHES_PER_BATCH = 96;

export class Runtime {
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  private readonly kernels: KernelCache;
  private readonly windows: BindingWindows;
  private readonly arena: UniformArena;
  private readonly background: BackgroundSubmissions;
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private batchDispatches = 0;
  private compileError: GpuError | undefined;
  private counters = { dispatches: 0, submits: 0, readbacks: 0, waitMs: 0 };
  /** Callbacks run right after the next submit (deferred frees). */
  private afterSubmit: (() => void)[] = [];
  private dynamicOffset = [0];
  /** The pipeline last set and the pass it was set on. */
  private lastPass: GPUComputePassEncoder | undefined;
  private lastPipeline: GPUComputePipeline | undefined;
  /** Set while a profile() region runs. */
  private profiler: DispatchProfiler | undefined;
  private bindingLimitOverride: number | undefined;
  /**
   * Compile new kernels with createComputePipelineAsync and submit the batches that use them once
   * they are ready, instead of compiling each on first use before recording goes on. On by default
   * in a browser (Chromium compiles on worker threads, so a first inference's kernels compile
   * concurrently); off in Node unless CELLGPU_ASYNC_PIPELINES=1 (slower with Dawn's Node binding).
   */
  asyncPipelines: boolean;

  constructor(readonly gpu: Gpu) {
    this.device = gpu.device;
    this.pool = new BufferPool(this.device);
    const keepError = (err: GpuError) => void (this.compileError ??= err);
    this.windows = new BindingWindows(this.device);
    this.kernels = new KernelCache(this.device, this.windows, keepError);
    this.arena = new UniformArena(this.pool, Math.max(16, this.device.limits.minUniformBufferOffsetAlignment));
    this.background = new BackgroundSubmissions(this.device, keepError);
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
    return this.windows.window(buffer, byteOffset, byteSize);
  }

  /** The buffer, offset and size a (possibly window) handle binds. */
  resolveBinding(b: GPUBuffer): BufferWindow {
    return this.windows.resolve(b);
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

  /** Place a dispatch's parameters in the batch's arena, submitting the batch first when it is full. */
  private writeUniform(data: ArrayBufferView): UniformSlot {
    const slot = this.arena.place(data);
    if (slot) return slot;
    this.flush();
    return this.arena.place(data)!;
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
    const k = this.kernels.compile(def, this.asyncPipelines && !this.profiler);
    if (k.failed) throw k.failed;
    const u = params ? this.writeUniform(params) : undefined; // may flush: do it before opening the pass
    const bindGroup = this.kernels.bindGroup(def, k, buffers, u, this.bindingLimit);
    let [x, y, z] = typeof workgroups === 'number' ? [workgroups, 1, 1] : [workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1];
    if (x > MAX_WORKGROUPS && y === 1 && z === 1) {
      y = Math.ceil(x / MAX_WORKGROUPS);
      x = Math.ceil(x / y);
      if (y > MAX_WORKGROUPS) throw new Error(`kernel '${def.key}': ${x * y} workgroups exceed the 2-D grid`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    if (this.profiler) return this.profiledDispatch(def, k, bindGroup, u, x, y, z);
    if (!k.pipeline || this.background.holding) {
      if (!k.pipeline) this.background.waitFor(k.ready!);
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
    // Consecutive dispatches of one kernel (chunked launches, optimizer groups) set it once.
    if (pass !== this.lastPass || k.pipeline !== this.lastPipeline) {
      pass.setPipeline(k.pipeline);
      this.lastPass = pass;
      this.lastPipeline = k.pipeline;
    }
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
    await this.background.queued; // profiled regions compile synchronously and dispatch one pass at a time
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

  /** Forget every cached bind group (they hold references to their buffers). */
  dropBindGroups(): void {
    this.kernels.dropBindGroups();
  }

  /** Destroy the pool's free buffers and the bind groups that may name them. */
  trim(): void {
    this.dropBindGroups();
    // Batches still waiting for compilations may use the free buffers: destroy after them.
    this.pool.trim(this.background.queued ? (bufs) => this.background.enqueue(() => bufs.forEach((b) => b.destroy())) : undefined);
  }

  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    const s = this.resolveBinding(src);
    const d = this.resolveBinding(dst);
    const copy = (e: GPUCommandEncoder) => e.copyBufferToBuffer(s.buffer, s.offset + srcOffset, d.buffer, d.offset + dstOffset, bytes);
    if (this.background.holding) this.defer((r) => copy(r.plain()));
    else copy(this.commandEncoder());
  }

  clearBuffer(buf: GPUBuffer, offset = 0, size?: number): void {
    const w = this.resolveBinding(buf);
    const clear = (e: GPUCommandEncoder) => e.clearBuffer(w.buffer, w.offset + offset, size ?? w.size - offset);
    if (this.background.holding) this.defer((r) => clear(r.plain()));
    else clear(this.commandEncoder());
  }

  // ---- background compilation -----------------------------------------------------------------

  /** Record a command of a batch that waits for a compilation; from the first one on, the batch's
   *  commands are kept and replayed at submission (the ones before it are finished as they are). */
  private defer(cmd: DeferredCommand): void {
    if (!this.background.holding) {
      let head: GPUCommandBuffer | undefined;
      if (this.encoder) {
        this.pass?.end();
        this.pass = undefined;
        head = this.encoder.finish();
        this.encoder = undefined;
      }
      this.background.hold(head);
    }
    this.background.push(cmd);
  }

  /** Upload host data now (queue timeline; ordered before the batch being recorded). */
  write(buf: GPUBuffer, offset: number, data: ArrayBufferView): void {
    const w = this.resolveBinding(buf);
    buf = w.buffer;
    offset += w.offset;
    const pad = data.byteLength % 4;
    if (this.background.queued) {
      // After the batches waiting for compilations: a copy, as the caller may reuse its memory.
      const copy = new Uint8Array(data.byteLength + (pad ? 4 - pad : 0));
      copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      const target = buf;
      this.background.enqueue(() => this.device.queue.writeBuffer(target, offset, copy));
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
    if (!this.encoder && !this.background.holding) return;
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
    if (this.background.holding || this.background.queued) {
      this.background.queueBatch(this.encoder?.finish(), this.arena.snapshot());
    } else {
      this.arena.upload(this.device.queue);
      this.profiler?.resolve(this.encoder!);
      this.device.queue.submit([this.encoder!.finish()]);
      this.profiler?.submitted();
    }
    this.counters.submits++;
    this.encoder = undefined;
    this.batchDispatches = 0;
    this.arena.submitted();
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
    await this.background.queued;
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
    await this.background.queued;
    this.throwCompileError();
    await this.device.queue.onSubmittedWorkDone();
    this.counters.waitMs += performance.now() - tw;
    this.gpu.throwIfFailed();
  }

  stats(): RuntimeStats {
    return { ...this.pool.getStats(), ...this.counters, bindGroups: this.kernels.bindGroupsCreated, pipelines: this.kernels.size };
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
