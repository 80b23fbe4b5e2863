// Module: a tree of named parameters, buffers and child modules, like torch.nn.Module. Names are
// joined with '.' into state-dict keys, so a name may hold any character except '.' (Detectron2's
// VoVNet has children called 'stem_1/conv', giving keys like 'backbone.bottom_up.stem.stem_1/conv.weight').
// `loadStateDict` copies into the existing tensors in place, so fields that hold them stay valid.
import { DTYPE_BYTES, f16ToF32, f32ToF16 } from '../../runtime/dtype';
import { rt } from '../../runtime/runtime';
import { numelOf } from '../../runtime/shape';
import { Tensor } from '../tensor';
import { launchMap } from '../../kernels/elementwise/map';

/** A tensor in host memory as the checkpoint readers produce it (structurally engine/checkpoint's
 *  HostTensor): a safetensors dtype tag, a row-major shape and the elements in C order. */
export interface HostTensorLike {
  dtype: 'F32' | 'F16' | 'F64' | 'I8' | 'U8' | 'I32' | 'I64' | 'BOOL';
  shape: readonly number[];
  data: ArrayLike<number> | BigInt64Array;
}

export type StateSource = Tensor | HostTensorLike;

export interface ShapeMismatch {
  key: string;
  expected: number[];
  got: number[];
}

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
  shapeMismatches: ShapeMismatch[];
}

export interface LoadOptions {
  /** Throw (loading nothing) when any key is missing, unexpected or of another shape. Default true. */
  strict?: boolean;
}

function checkName(kind: string, name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw new Error(`${kind} name must be a non-empty string, got ${JSON.stringify(name)}`);
  if (name.includes('.')) throw new Error(`${kind} name '${name}' contains '.', which separates state-dict key parts`);
}

export class Module {
  /** Training mode (dropout, batch-norm statistics); set with train()/eval() for the whole tree. */
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly buffers = new Map<string, { tensor: Tensor | null; persistent: boolean }>();
  private readonly children = new Map<string, Module>();

  private checkFree(kind: string, name: string): void {
    checkName(kind, name);
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name)) {
      throw new Error(`${this.constructor.name}: '${name}' is already registered`);
    }
  }

  /** Register a trainable tensor (it becomes a leaf with requiresGrad). Null reserves the name. */
  registerParameter<T extends Tensor | null>(name: string, tensor: T): T {
    this.checkFree('parameter', name);
    if (tensor) {
      if (tensor.dtype !== 'f32' && tensor.dtype !== 'f16') throw new Error(`parameter '${name}' must be a float tensor, got ${tensor.dtype}`);
      if (tensor.gradFn) throw new Error(`parameter '${name}' must be a leaf tensor, got the output of ${tensor.gradFn.name}`);
      tensor.requiresGrad = true;
      tensor.keep();
    }
    this.params.set(name, tensor);
    return tensor;
  }

  /** Register a non-trainable tensor (running statistics...). Non-persistent buffers are left out
   *  of the state dict. */
  registerBuffer<T extends Tensor | null>(name: string, tensor: T, opts: { persistent?: boolean } = {}): T {
    this.checkFree('buffer', name);
    tensor?.keep();
    this.buffers.set(name, { tensor, persistent: opts.persistent ?? true });
    return tensor;
  }

  /** Register a child module under `name`. */
  registerModule<M extends Module>(name: string, module: M): M {
    this.checkFree('module', name);
    if (!(module instanceof Module)) throw new Error(`registerModule('${name}'): not a Module`);
    this.children.set(name, module);
    return module;
  }

  /** Replace a registered buffer's tensor (e.g. a new running mean); the old one is disposed. */
  setBuffer(name: string, tensor: Tensor | null): void {
    const b = this.buffers.get(name);
    if (!b) throw new Error(`${this.constructor.name}: no buffer '${name}'`);
    if (b.tensor && b.tensor !== tensor) b.tensor.dispose();
    b.tensor = tensor?.keep() ?? null;
  }

  getParameter(name: string): Tensor | null | undefined {
    return this.params.get(name);
  }
  getBuffer(name: string): Tensor | null | undefined {
    return this.buffers.get(name)?.tensor;
  }
  getModule(name: string): Module | undefined {
    return this.children.get(name);
  }

  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** This module and all descendants, depth first, with their dotted paths ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const walk = (m: Module, p: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([p, m]);
      for (const [n, c] of m.children) walk(c, p ? `${p}.${n}` : n);
    };
    walk(this, prefix);
    return out;
  }

  /** Parameters with their state-dict keys, in registration order (a tensor shared by two
   *  modules is listed once, under its first key). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [p, m] of this.namedModules(prefix)) {
      for (const [n, t] of m.params) {
        if (!t || seen.has(t)) continue;
        seen.add(t);
        out.push([p ? `${p}.${n}` : n, t]);
      }
    }
    return out;
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [p, m] of this.namedModules(prefix)) {
      for (const [n, b] of m.buffers) {
        if (!b.tensor || seen.has(b.tensor)) continue;
        seen.add(b.tensor);
        out.push([p ? `${p}.${n}` : n, b.tensor]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Set training mode on this module and every descendant. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Drop every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.grad = null;
    }
  }

  /**
   * Parameters and persistent buffers by key, in PyTorch's order: each module's own parameters,
   * then its buffers, then its children's entries. The tensors are the module's own (not copies).
   */
  stateDict(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const walk = (m: Module, p: string) => {
      for (const [n, t] of m.params) if (t) out.set(p + n, t);
      for (const [n, b] of m.buffers) if (b.tensor && b.persistent) out.set(p + n, b.tensor);
      for (const [n, c] of m.children) walk(c, `${p}${n}.`);
    };
    walk(this, prefix ? `${prefix}.` : '');
    return out;
  }

  /**
   * Copy `state` into this module's parameters and persistent buffers, converting dtypes as
   * needed (F64/F16/I8/U8/I32/I64/BOOL host data to the tensor's dtype). Strict (default): any
   * missing, unexpected or shape-mismatched key throws one error listing them all, before anything
   * is copied. Non-strict: copies the matching keys and returns the others.
   */
  loadStateDict(state: Map<string, StateSource> | Record<string, StateSource>, opts: LoadOptions = {}): LoadResult {
    const strict = opts.strict ?? true;
    const entries = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !entries.has(k));
    const unexpectedKeys = [...entries.keys()].filter((k) => !own.has(k));
    const shapeMismatches: ShapeMismatch[] = [];
    const toLoad: [Tensor, StateSource, string][] = [];
    for (const [key, target] of own) {
      const src = entries.get(key);
      if (src === undefined) continue;
      const shape = sourceShape(src, key);
      if (shape.length !== target.shape.length || shape.some((n, i) => n !== target.shape[i])) {
        shapeMismatches.push({ key, expected: [...target.shape], got: [...shape] });
      } else {
        toLoad.push([target, src, key]);
      }
    }
    const result = { missingKeys, unexpectedKeys, shapeMismatches };
    if (strict && (missingKeys.length || unexpectedKeys.length || shapeMismatches.length)) {
      throw new Error(`${this.constructor.name}.loadStateDict: ${describeLoadProblems(result)}`);
    }
    // Host uploads go on the queue timeline, ahead of the batch being recorded: submit that batch
    // first so that earlier recorded writes (initialisers) cannot land on top of the loaded values.
    if (toLoad.some(([, src]) => !(src instanceof Tensor))) rt().flush();
    for (const [target, src, key] of toLoad) copyInto(target, src, key);
    return result;
  }

  /** Dispose every parameter, buffer and gradient of this module tree. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const t of m.params.values()) {
        t?.grad?.dispose();
        t?.dispose();
      }
      for (const b of m.buffers.values()) b.tensor?.dispose();
    }
  }
}

function describeLoadProblems(r: LoadResult): string {
  const parts: string[] = [];
  const list = (keys: string[]) => keys.slice(0, 20).join(', ') + (keys.length > 20 ? `, ... (${keys.length} in all)` : '');
  if (r.missingKeys.length) parts.push(`missing keys (in the module, not in the state): ${list(r.missingKeys)}`);
  if (r.unexpectedKeys.length) parts.push(`unexpected keys (in the state, not in the module): ${list(r.unexpectedKeys)}`);
  if (r.shapeMismatches.length) {
    const lines = r.shapeMismatches.slice(0, 20).map((m) => `${m.key}: state has [${m.got}], module has [${m.expected}]`);
    if (r.shapeMismatches.length > 20) lines.push(`... (${r.shapeMismatches.length} in all)`);
    parts.push(`shape mismatches: ${lines.join('; ')}`);
  }
  return parts.join('. ');
}

function sourceShape(src: StateSource, key: string): readonly number[] {
  if (src instanceof Tensor) return src.shape;
  if (src && typeof src === 'object' && Array.isArray(src.shape) && src.data && typeof src.data.length === 'number') {
    const n = numelOf(src.shape);
    if (n !== src.data.length) throw new Error(`loadStateDict: '${key}' has shape [${src.shape}] (${n} elements) but ${src.data.length} values`);
    return src.shape;
  }
  throw new Error(`loadStateDict: '${key}' is neither a Tensor nor a host tensor {dtype, shape, data}`);
}

/** Host values as plain numbers (I64 through Number: exact up to 2^53). */
function hostNumbers(src: HostTensorLike): ArrayLike<number> {
  switch (src.dtype) {
    case 'I64':
      return Float64Array.from(src.data as BigInt64Array, (v) => Number(v));
    case 'F16':
      return Float32Array.from(src.data as ArrayLike<number>, (h) => f16ToF32(h));
    case 'BOOL':
      return Uint8Array.from(src.data as ArrayLike<number>, (v) => (v ? 1 : 0));
    default:
      return src.data as ArrayLike<number>;
  }
}

function copyInto(target: Tensor, src: StateSource, key: string): void {
  if (target.numel === 0) return;
  if (src instanceof Tensor) {
    if (src.storage === target.storage && src.offset === target.offset) return; // loading a module's own state
    launchMap({ name: 'copy', expr: 'a', inputs: [src], out: target });
    return;
  }
  if (!target.isContiguous()) throw new Error(`loadStateDict: '${key}' is a non-contiguous view; load into its base tensor`);
  let host: ArrayBufferView;
  switch (target.dtype) {
    case 'f32':
      host = src.dtype === 'F32' ? (src.data as Float32Array) : Float32Array.from(hostNumbers(src));
      break;
    case 'f16':
      host = src.dtype === 'F16' ? (src.data as Uint16Array) : Uint16Array.from(hostNumbers(src), (v) => f32ToF16(v));
      break;
    case 'i32':
      host = src.dtype === 'I32' ? (src.data as Int32Array) : Int32Array.from(hostNumbers(src), (v) => Math.trunc(v));
      break;
    case 'u32':
      host = Uint32Array.from(hostNumbers(src), (v) => Math.trunc(v));
      break;
    case 'bool':
      host = Uint32Array.from(hostNumbers(src), (v) => (v ? 1 : 0));
      break;
  }
  rt().write(target.buffer, target.offset * DTYPE_BYTES[target.dtype], host);
}
