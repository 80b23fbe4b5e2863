// Tensors: a view (shape, strides, element offset, dtype) of a reference-counted GPU storage.
// View ops (reshape when possible, permute, narrow, expand, squeeze, unsqueeze) never copy.
// `await t.data()` / `await t.item()` are the only readbacks. Memory is freed by `dispose()`, by
// the enclosing `scope()`, or, as a safety net, when the tensor is garbage collected; a freed
// buffer goes back to the pool only after the commands using it were submitted.
import { type DataArray, type DType, DTYPE_BYTES, f16ToF32, f32ToF16 as f32ToF16Bits, isFloat } from '../runtime/dtype';
import { rt, withDevice, type Runtime } from '../runtime/runtime';
import { contiguousStrides, isDense, numelOf, type View } from '../runtime/shape';
import { launchMap } from '../kernels/elementwise/map';

/** One recorded op on a tensor's autograd graph (engine/autograd.ts records and walks it): the op's
 *  inputs and its backward, which maps the output's gradient to the inputs' gradients. */
export interface GradNode {
  name: string;
  inputs: readonly Tensor[];
  /** Gradients for each input (null/undefined where none flows). */
  backward: ((grad: Tensor) => readonly (Tensor | null | undefined)[]) | null;
}

/** Work that will fill a storage's buffer when first needed: a fused elementwise expression
 *  (engine/lazy.ts). `drop()` forgets it when the storage is freed unread. */
export interface PendingWork {
  realize(): void;
  drop(): void;
}

export class Storage {
  refs = 0;
  released = false;
  /** Not computed yet: the buffer's contents are this expression's (engine/lazy.ts). */
  pending: PendingWork | null = null;
  /** Storages whose pending expressions read this one. They are computed before anything else
   *  touches this buffer, so an in-place write can never change what they read. */
  readers: Set<Storage> | null = null;
  constructor(
    /** The buffer without realizing anything: only for the fusion layer, which orders its own
     *  reads; everything else uses `buffer`. */
    readonly raw: GPUBuffer,
    readonly bytes: number,
    /** The runtime (device) whose pool the buffer came from: it goes back there, and is read
     *  back there, whichever device is current (runtime.ts `withDevice`). */
    readonly runtime: Runtime = rt(),
  ) {}
  /** The buffer, after computing this storage's pending expression and every pending expression
   *  that reads it: every kernel launch, readback, copy and in-place update goes through here. */
  get buffer(): GPUBuffer {
    this.pending?.realize();
    // A copy: realizing a reader removes it from the set. Most reads find the set empty.
    if (this.readers?.size) for (const r of [...this.readers]) r.pending?.realize();
    return this.raw;
  }
  retain(): void {
    this.refs++;
  }
  releaseRef(): void {
    if (--this.refs === 0 && !this.released) {
      this.released = true;
      const p = this.pending;
      this.pending = null;
      p?.drop();
      this.runtime.pool.release(this.raw);
      liveStorages--;
    }
  }
}

let liveStorages = 0;
let liveTensors = 0;
let nextId = 1;

// GC backstop: a tensor that was never disposed releases its storage reference when collected.
const finalizer = new FinalizationRegistry<Storage>((storage) => {
  liveTensors--;
  storage.releaseRef();
});

type Scope = Set<Tensor>;
const scopes: Scope[] = [];

export interface TensorInit {
  storage: Storage;
  shape: readonly number[];
  strides?: readonly number[];
  offset?: number;
  dtype: DType;
}

export class Tensor implements View {
  readonly id = nextId++;
  readonly storage: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: GradNode | null = null;
  /** Optional name (parameters carry their state-dict key). */
  name: string | undefined;
  private disposed = false;

  constructor(init: TensorInit) {
    this.storage = init.storage;
    this.shape = Object.freeze([...init.shape]);
    this.strides = Object.freeze(init.strides ? [...init.strides] : contiguousStrides(init.shape));
    this.offset = init.offset ?? 0;
    this.dtype = init.dtype;
    this.storage.retain();
    liveTensors++;
    finalizer.register(this, this.storage, this);
    scopes[scopes.length - 1]?.add(this);
  }

  get buffer(): GPUBuffer {
    this.checkAlive();
    return this.storage.buffer;
  }
  /** Throws if disposed (without computing a pending expression, as `buffer` would). */
  checkAlive(): void {
    if (this.disposed) throw new Error(`tensor #${this.id}${this.name ? ` (${this.name})` : ''} [${this.shape}] was used after dispose()`);
  }
  get numel(): number {
    return numelOf(this.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this.disposed;
  }
  isContiguous(): boolean {
    return isDense(this.shape, this.strides);
  }
  size(dim: number): number {
    return this.shape[normDim(dim, this.ndim)]!;
  }

  /** Free the storage reference now (the buffer returns to the pool after the next submit). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    finalizer.unregister(this);
    liveTensors--;
    for (const s of scopes) s.delete(this);
    this.gradFn = null;
    this.storage.releaseRef();
  }

  /** Keep this tensor alive past the enclosing scope(s). */
  keep(): this {
    for (const s of scopes) s.delete(this);
    return this;
  }

  /** A new tensor (same storage) without autograd history. */
  detach(): Tensor {
    return this.viewAs(this.shape, this.strides, this.offset);
  }

  /** Internal: a new view on the same storage, no autograd (autograd wraps this in ops/view). */
  viewAs(shape: readonly number[], strides: readonly number[], offset: number): Tensor {
    this.checkAlive();
    return new Tensor({ storage: this.storage, shape, strides, offset, dtype: this.dtype });
  }

  /** Read the elements back in row-major order of `shape`. */
  async data(): Promise<DataArray> {
    const device = this.storage.runtime;
    const src = this.isContiguous() ? this : withDevice(device, () => contiguousCopy(this));
    const bytes = DTYPE_BYTES[this.dtype];
    const raw = await device.read(src.buffer, src.offset * bytes, this.numel * bytes);
    if (src !== this) src.dispose();
    switch (this.dtype) {
      case 'f32':
        return new Float32Array(raw);
      case 'i32':
        return new Int32Array(raw);
      case 'u32':
        return new Uint32Array(raw);
      case 'bool':
        return Uint8Array.from(new Uint32Array(raw));
      case 'f16': {
        const h = new Uint16Array(raw);
        const f = new Float32Array(h.length);
        for (let i = 0; i < h.length; i++) f[i] = f16ToF32(h[i]!);
        return f;
      }
    }
  }

  /** Data as a plain nested-free number array (convenient in tests). */
  async toArray(): Promise<number[]> {
    return Array.from(await this.data());
  }

  async item(): Promise<number> {
    if (this.numel !== 1) throw new Error(`item() needs a tensor with one element, got shape [${this.shape}]`);
    return (await this.data())[0]!;
  }

  toString(): string {
    return `Tensor#${this.id}(${this.dtype}, [${this.shape}]${this.requiresGrad ? ', requiresGrad' : ''}${this.gradFn ? `, grad_fn=${this.gradFn.name}` : ''})`;
  }
}

export function normDim(dim: number, ndim: number): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim) throw new Error(`dimension ${dim} out of range for a ${ndim}-d tensor`);
  return d;
}

/** Allocate an uninitialised contiguous tensor. */
export function empty(shape: readonly number[], dtype: DType = 'f32'): Tensor {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape}]`);
  }
  if (dtype === 'f16' && !rt().gpu.features.f16) throw new Error('f16 tensors need the shader-f16 feature, which this adapter lacks');
  const bytes = Math.max(4, numelOf(shape) * DTYPE_BYTES[dtype]);
  // Tensors larger than one storage binding are fine: the launchers split their work into
  // binding-sized windows (kernels/large.ts). One buffer is the limit.
  const r = rt();
  const maxBuffer = r.gpu.limits.maxBufferSize;
  if (bytes > maxBuffer) {
    throw new Error(`tensor [${shape}] ${dtype} needs ${bytes} bytes, over this device's ${maxBuffer}-byte buffer size limit (maxBufferSize)`);
  }
  const buffer = r.pool.acquire(bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, () => `tensor[${shape}]${dtype}`);
  liveStorages++;
  return new Tensor({ storage: new Storage(buffer, bytes), shape, dtype });
}

/** Contiguous copy of any view (no autograd). */
export function contiguousCopy(t: Tensor): Tensor {
  const out = empty(t.shape, t.dtype);
  launchMap({ name: 'copy', expr: 'a', inputs: [t], out });
  return out;
}

/** Upload host data as a new tensor. */
export function fromArray(data: ArrayLike<number>, shape?: readonly number[], dtype: DType = 'f32'): Tensor {
  const s = shape ?? [data.length];
  const n = numelOf(s);
  if (n !== data.length) throw new Error(`fromArray: ${data.length} values do not fill shape [${s}] (${n})`);
  const t = empty(s, dtype);
  let host: ArrayBufferView;
  switch (dtype) {
    case 'f32':
      host = data instanceof Float32Array ? data : Float32Array.from(data);
      break;
    case 'i32':
      host = data instanceof Int32Array ? data : Int32Array.from(data);
      break;
    case 'u32':
    case 'bool':
      host = data instanceof Uint32Array ? data : Uint32Array.from(data, (v) => (dtype === 'bool' ? (v ? 1 : 0) : v));
      break;
    case 'f16': {
      const h = new Uint16Array(n);
      for (let i = 0; i < n; i++) h[i] = f32ToF16Bits(data[i]!);
      host = h;
      break;
    }
  }
  if (n > 0) rt().write(t.buffer, 0, host);
  return t;
}

/** Fill a new tensor with a constant. */
export function full(shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  const out = empty(shape, dtype);
  const expr = dtype === 'bool' ? 'select(0u, 1u, s0 != 0.0)' : isFloat(dtype) ? 's0' : dtype === 'i32' ? 'i32(s0)' : 'u32(s0)';
  launchMap({ name: 'fill', expr, inputs: [], out, scalars: [value] });
  return out;
}

export const zeros = (shape: readonly number[], dtype: DType = 'f32') => full(shape, 0, dtype);
export const ones = (shape: readonly number[], dtype: DType = 'f32') => full(shape, 1, dtype);

/** [start, start+step, ...) below end, like torch.arange. */
export function arange(start: number, end?: number, step = 1, dtype: DType = 'f32'): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const n = Math.max(0, Math.ceil((end - start) / step));
  const out = empty([n], dtype);
  const expr = isFloat(dtype) ? 's0 + f32(i) * s1' : dtype === 'i32' ? 'i32(s0) + i32(i) * i32(s1)' : 'u32(s0) + i * u32(s1)';
  launchMap({ name: 'arange', expr, inputs: [], out, scalars: [start, step] });
  return out;
}

/** Uniform [lo, hi) from a counter-based GPU RNG: the same seed gives the same values anywhere. */
export function rand(shape: readonly number[], seed: number, lo = 0, hi = 1): Tensor {
  const out = empty(shape, 'f32');
  launchMap({ name: 'rand', expr: 's0 + (s1 - s0) * rand_u01(i, seed)', inputs: [], out, scalars: [lo, hi] }, seed);
  return out;
}

export function randn(shape: readonly number[], seed: number, mean = 0, std = 1): Tensor {
  const out = empty(shape, 'f32');
  launchMap({ name: 'randn', expr: 's0 + s1 * rand_normal(i, seed)', inputs: [], out, scalars: [mean, std] }, seed);
  return out;
}

/**
 * Run `fn` and dispose every tensor created inside it, except those it returns (found in arrays
 * and plain objects of the result) and those marked with `keep()`. Works with async functions.
 */
export function scope<T>(fn: () => T): T {
  const s: Scope = new Set();
  scopes.push(s);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    popScope(s, undefined);
    throw err;
  }
  if (result instanceof Promise) {
    throw new Error('scope(): use scopeAsync() for async functions');
  }
  popScope(s, result);
  return result;
}

export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const s: Scope = new Set();
  scopes.push(s);
  try {
    const result = await fn();
    popScope(s, result);
    return result;
  } catch (err) {
    popScope(s, undefined);
    throw err;
  }
}

function popScope(s: Scope, result: unknown): void {
  const i = scopes.lastIndexOf(s);
  if (i >= 0) scopes.splice(i, 1);
  const keep = new Set<Tensor>();
  collectTensors(result, keep, 0);
  const parent = scopes[scopes.length - 1];
  for (const t of s) {
    if (keep.has(t)) parent?.add(t);
    else t.dispose();
  }
}

function collectTensors(v: unknown, out: Set<Tensor>, depth: number): void {
  if (depth > 6 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collectTensors(x, out, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collectTensors(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collectTensors(x, out, depth + 1);
}

export interface MemoryInfo {
  liveTensors: number;
  liveStorages: number;
  liveBytes: number;
  peakBytes: number;
  pooledBytes: number;
  allocatedBytes: number;
}

/** Live tensors and GPU bytes (pool view). */
export function memory(): MemoryInfo {
  const s = rt().pool.getStats();
  return { liveTensors, liveStorages, liveBytes: s.liveBytes, peakBytes: s.peakBytes, pooledBytes: s.pooledBytes, allocatedBytes: s.allocatedBytes };
}
