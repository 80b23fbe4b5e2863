// Automatic elementwise fusion. An elementwise op (engine/ops/elementwise.ts: unary, scalar, binary
// with broadcasting, where, cast, fills; forward and the backward expressions alike) does not
// dispatch: its output tensor gets a pooled buffer at once, but the buffer's contents are pending,
// an expression DAG whose leaves are views of computed storages. An elementwise op that reads a
// pending tensor inlines its expression instead of reading the buffer, so a chain builds one
// expression. The expression is compiled into one map kernel (kernels/elementwise/map.ts; the
// generated WGSL depends only on the expression's structure and dtypes, scalars are uniforms) and
// dispatched when the buffer is needed: any other access goes through `Storage.buffer`, which
// computes the pending expression first, and also every pending expression that reads that
// storage, so a later in-place write (optimizer, copy into a view) cannot change their inputs.
//
// Intermediates of a chain that are still alive when it is computed (e.g. saved for backward) are
// stored by the same kernel as extra outputs when they have the root's shape (up to three); the
// others stay pending and are recomputed from their own leaves if they are read later (a smaller,
// broadcast operand: cheap, and it keeps the kernel one output shape). A pending storage holds a
// reference on each leaf storage until it is computed or freed.
import { type DType, DTYPE_BYTES, WGSL_COMPUTE } from '../runtime/dtype';
import { rt, withDevice } from '../runtime/runtime';
import { contiguousStrides, isDense, numelOf, type View } from '../runtime/shape';
import { launchMap, MAX_EXTRA_OUTS, MAX_RANK } from '../kernels/elementwise/map';
import { bindingLimit, overBindingLimit } from '../kernels/large';
import { ELEMENTWISE_HELPERS } from '../kernels/elementwise/table';
import { empty, type PendingWork, type Storage, type Tensor } from './tensor';

let enabled = typeof process === 'undefined' || process.env?.CELLGPU_FUSION !== '0';

/** Turn automatic elementwise fusion on or off (default on; `CELLGPU_FUSION=0` starts it off).
 *  Pending expressions already built are still computed when read. */
export function setFusion(on: boolean): void {
  enabled = on;
}

export function isFusionEnabled(): boolean {
  return enabled;
}

/** Most ops in one expression: past it, an op's pending operands are computed first. */
const MAX_OPS = 48;

interface Leaf {
  kind: 'leaf';
  /** Storage, view and dtype: one binding per distinct key. */
  key: string;
  storage: Storage;
  view: View;
}

interface Node {
  kind: 'op';
  fn: FnDef;
  args: Expr[];
  argTypes: DType[];
  scalars: number[];
  shape: readonly number[];
  dtype: DType;
  /** The storage this node's value belongs to (its tensor may be gone: see pendingOf). */
  owner: Storage;
  /** Distinct leaves of the whole DAG below. */
  leaves: Leaf[];
  /** Number of op nodes below, shared ones counted per use (a bound, not an exact count). */
  size: number;
  /** Uses the linear output index `i`: may only be inlined into a consumer of its own shape. */
  indexDep: boolean;
}

type Expr = Leaf | Node;

/** The WGSL function of one op: `fn <name>(x, y, z..., s0, s1, i) -> out`. */
interface FnDef {
  name: string;
  text: string;
  /** ELEMENTWISE_HELPERS plus this function, for the unfused launch. */
  helpers: string;
  /** The expression uses the linear output index `i`. */
  indexDep: boolean;
}

const PARAMS = ['x', 'y', 'z', 'w', 'v', 'u'];
const LETTERS = 'abcdefgh';
const fns = new Map<string, FnDef>();

function fnFor(name: string, expr: string, argTypes: readonly DType[], outType: DType): FnDef {
  const key = `${name}\u0000${expr}\u0000${argTypes.join()}\u0000${outType}`;
  let f = fns.get(key);
  if (!f) {
    const fname = `ew${fns.size}_${name.replace(/[^A-Za-z0-9]/g, '')}`;
    const outT = WGSL_COMPUTE[outType];
    const params = [...argTypes.map((t, j) => `${PARAMS[j]}: ${WGSL_COMPUTE[t]}`), 's0: f32', 's1: f32', 'i: u32'];
    const text = `fn ${fname}(${params.join(', ')}) -> ${outT} { return ${outT}(${expr}); }`;
    fns.set(key, (f = { name: fname, text, helpers: `${ELEMENTWISE_HELPERS}\n${text}`, indexDep: /\bi\b/.test(expr) }));
  }
  return f;
}

class PendingExpr implements PendingWork {
  done = false;
  constructor(
    readonly storage: Storage,
    readonly node: Node,
  ) {}
  realize(): void {
    if (!this.done) compute(this);
  }
  drop(): void {
    if (this.done) return;
    this.done = true;
    this.storage.pending = null;
    for (const l of this.node.leaves) {
      l.storage.readers?.delete(this.storage);
      l.storage.releaseRef();
    }
  }
}

/** The pending expression of a storage, if it is still this node's. */
function pendingOf(s: Storage): PendingExpr | null {
  return s.pending instanceof PendingExpr && !s.pending.done ? s.pending : null;
}

const storageIds = new WeakMap<Storage, number>();
let nextStorageId = 1;
function storageId(s: Storage): number {
  let id = storageIds.get(s);
  if (id === undefined) storageIds.set(s, (id = nextStorageId++));
  return id;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((n, i) => n === b[i]);

function leafOf(t: Tensor): Leaf {
  t.checkAlive();
  t.storage.pending?.realize();
  const view: View = { buffer: t.storage.raw, dtype: t.dtype, shape: t.shape, strides: t.strides, offset: t.offset };
  return { kind: 'leaf', key: `${storageId(t.storage)}|${t.offset}|${t.shape}|${t.strides}|${t.dtype}`, storage: t.storage, view };
}

/** Input `t` as an expression: its pending node when `t` is that node's whole value (not another
 *  view of it), else a leaf (computed now if pending). */
function operand(t: Tensor, outShape: readonly number[]): Expr {
  const p = pendingOf(t.storage);
  if (p && t.offset === 0 && t.dtype === p.node.dtype && sameShape(t.shape, p.node.shape) && isDense(t.shape, t.strides) && (!p.node.indexDep || sameShape(t.shape, outShape))) {
    t.checkAlive();
    return p.node;
  }
  return leafOf(t);
}

function mergeLeaves(args: readonly Expr[]): Leaf[] {
  const seen = new Map<string, Leaf>();
  for (const a of args) for (const l of a.kind === 'leaf' ? [a] : a.leaves) if (!seen.has(l.key)) seen.set(l.key, l);
  return [...seen.values()];
}

// Read once per device: `device.limits` builds a new object on every access in Dawn's bindings.
const bindingCaps = new WeakMap<GPUDevice, number>();
function maxBindings(): number {
  const d = rt().device;
  let n = bindingCaps.get(d);
  if (n === undefined) bindingCaps.set(d, (n = d.limits.maxStorageBuffersPerShaderStage));
  return n;
}
const maxLeaves = () => Math.min(8, maxBindings() - 1);

/**
 * out = expr(inputs...) elementwise, broadcasting the inputs to `outShape`: WGSL `expr` over x, y,
 * z, w, v, u (the inputs, converted to the compute types of `argTypes`), the scalars s0, s1 and the
 * linear output index i (u32). With fusion on, the result is pending (see the file comment);
 * otherwise, or where fusion does not apply (an operand over one storage binding), one map kernel
 * now.
 */
export function elementwise(name: string, expr: string, inputs: readonly Tensor[], outShape: readonly number[], outType: DType, argTypes: readonly DType[], scalars: readonly number[] = []): Tensor {
  if (inputs.length > PARAMS.length) throw new Error(`${name}: at most ${PARAMS.length} inputs`);
  if (scalars.length > 2) throw new Error(`${name}: at most 2 scalars`);
  const fn = fnFor(name, expr, argTypes, outType);
  const out = empty(outShape, outType);
  const numel = numelOf(outShape);
  const fusable = enabled && numel > 0 && outShape.length <= MAX_RANK && numel * DTYPE_BYTES[outType] <= bindingLimit() &&
    !inputs.some((t) => overBindingLimit(t.storage.raw));
  if (!fusable) {
    const call = `${fn.name}(${[...inputs.map((_, j) => `${WGSL_COMPUTE[argTypes[j]!]}(${LETTERS[j]})`), 's0', 's1', 'i'].join(', ')})`;
    launchMap({ name, expr: call, helpers: fn.helpers, inputs: [...inputs], out, scalars: [...scalars] });
    return out;
  }
  let args = inputs.map((t) => operand(t, outShape));
  let leaves = mergeLeaves(args);
  let size = 1 + args.reduce((n, a) => n + (a.kind === 'op' ? a.size : 0), 0);
  if (leaves.length > maxLeaves() || size > MAX_OPS) {
    // Too big for one kernel: compute the operands, and start a new expression over them.
    args = inputs.map((t) => leafOf(t));
    leaves = mergeLeaves(args);
    size = 1;
  }
  const node: Node = {
    kind: 'op', fn, args, argTypes: [...argTypes], scalars: [...scalars], shape: out.shape, dtype: outType, owner: out.storage, leaves, size,
    indexDep: fn.indexDep || args.some((a) => a.kind === 'op' && a.indexDep),
  };
  for (const l of leaves) {
    l.storage.retain();
    (l.storage.readers ??= new Set()).add(out.storage);
  }
  out.storage.pending = new PendingExpr(out.storage, node);
  return out;
}

/** The full helper text of a fused kernel by its body (the op functions it calls are named
 *  uniquely by fnFor, so the body determines them). The same string object is passed on every
 *  launch: building the kilobytes of helpers and hashing a fresh copy for the variant lookup was
 *  most of a fused launch's host time. */
const fusedHelpers = new Map<string, string>();

/** Compile and dispatch a pending expression, with as extra outputs (bindings permitting) the
 *  still-needed intermediates of its shape and the other pending expressions of its shape that read
 *  the same storages (e.g. w * dy and w * dy * x̂ of a norm backward: siblings, one kernel). */
function compute(pe: PendingExpr): void {
  const root = pe.node;
  const extras: PendingExpr[] = [];
  const leaves: Leaf[] = [];
  const letter = new Map<string, string>();
  const addLeaves = (ls: readonly Leaf[]) => {
    for (const l of ls) if (!letter.has(l.key)) letter.set(l.key, LETTERS[leaves.push(l) - 1]!);
  };
  addLeaves(root.leaves);
  const hasRoom = (newLeaves: number) =>
    extras.length < MAX_EXTRA_OUTS && leaves.length + newLeaves <= maxLeaves() && leaves.length + newLeaves + extras.length + 2 <= maxBindings();
  const names = new Map<Node, string>();
  const lines: string[] = [];
  const usedFns = new Map<string, string>();
  const sx: number[] = [];
  const visit = (e: Expr): string => {
    if (e.kind === 'leaf') return letter.get(e.key)!;
    const known = names.get(e);
    if (known) return known;
    const args = e.args.map((a, j) => `${WGSL_COMPUTE[e.argTypes[j]!]}(${visit(a)})`);
    const sc = [0, 1].map((k) => {
      if (k >= e.scalars.length) return '0.0';
      const at = sx.push(e.scalars[k]!) - 1;
      return `p.sx[${at >> 2}][${at & 3}]`;
    });
    const v = `t${names.size}`;
    names.set(e, v);
    usedFns.set(e.fn.name, e.fn.text);
    lines.push(`  let ${v} = ${e.fn.name}(${[...args, ...sc, 'i'].join(', ')});`);
    const p = e === root ? null : pendingOf(e.owner);
    if (p && p.node === e && !extras.includes(p) && hasRoom(0) && sameShape(e.shape, root.shape)) extras.push(p);
    return v;
  };
  const result = visit(root);
  for (const l of root.leaves) {
    for (const r of l.storage.readers ?? []) {
      const q = pendingOf(r);
      if (!q || q === pe || extras.includes(q) || !sameShape(q.node.shape, root.shape)) continue;
      const fresh = q.node.leaves.filter((x) => !letter.has(x.key)).length;
      if (!hasRoom(fresh)) continue;
      addLeaves(q.node.leaves);
      visit(q.node);
      if (!extras.includes(q) && hasRoom(0)) extras.push(q);
    }
  }
  const outs = [pe, ...extras];
  const params = [...leaves.map((l, j) => `${LETTERS[j]}: ${WGSL_COMPUTE[l.view.dtype]}`), 'i: u32'].join(', ');
  let ret: string;
  let retType: string;
  let struct = '';
  if (extras.length === 0) {
    ret = result;
    retType = WGSL_COMPUTE[root.dtype];
  } else {
    struct = `struct FusedOut { ${outs.map((o, k) => `o${k}: ${WGSL_COMPUTE[o.node.dtype]}`).join(', ')} }`;
    ret = `FusedOut(${outs.map((o) => names.get(o.node)!).join(', ')})`;
    retType = 'FusedOut';
  }
  const body = `${struct}\nfn fused(${params}) -> ${retType} {\n${lines.join('\n')}\n  return ${ret};\n}`;
  let helpers = fusedHelpers.get(body);
  if (helpers === undefined) fusedHelpers.set(body, (helpers = [ELEMENTWISE_HELPERS, ...usedFns.values(), body].join('\n')));
  const call = `fused(${[...leaves.map((_, j) => LETTERS[j]), 'i'].join(', ')})`;
  const strides = contiguousStrides(root.shape);
  const viewOf = (o: PendingExpr): View => ({ buffer: o.storage.raw, dtype: o.node.dtype, shape: root.shape, strides, offset: 0 });
  for (const o of outs) o.storage.pending = null;
  const launch = () =>
    launchMap({
      name: 'fused', expr: call, helpers, inputs: leaves.map((l) => l.view), out: viewOf(pe), extraOuts: extras.map(viewOf), extraScalars: sx,
    });
  // On the storage's own device (withDevice also submits, so only when it is not the current one).
  if (pe.storage.runtime === rt()) launch();
  else withDevice(pe.storage.runtime, launch);
  // Now computed: drop() only releases the leaves (pending is already cleared).
  for (const o of outs) o.drop();
}
