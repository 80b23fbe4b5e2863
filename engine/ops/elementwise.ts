// Elementwise ops generated from the table in kernels/elementwise/table.ts: forward and backward
// are both instances of the generic strided map kernel, built lazily through engine/lazy.ts so that
// chains fuse into one kernel. Binary ops broadcast like PyTorch and un-broadcast their gradients
// with sumToShape.
import { installAutogradOps, record } from '../autograd';
import { type DType, isFloat, WGSL_COMPUTE } from '../../runtime/dtype';
import { contiguousCopy, type Tensor } from '../tensor';
import { elementwise } from '../lazy';
import { type View } from '../../runtime/shape';
import { launchMap } from '../../kernels/elementwise/map';
import { BINARY_OPS, type BinaryOp, ELEMENTWISE_HELPERS, UNARY_OPS, type UnaryOp } from '../../kernels/elementwise/table';
import { sumToShape } from './view';

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`shapes [${a}] and [${b}] cannot be broadcast together`);
    out[i] = x === 1 ? y : x;
  }
  return out;
}

/** The result type of a binary op, as PyTorch promotes: f16 with f16 stays f16 (computed in f32),
 *  f16 with f32 is f32. */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  if (isFloat(a) || isFloat(b)) return 'f32';
  if (a === 'bool') return b;
  if (b === 'bool') return a;
  return 'i32';
}

/** Run `expr` (WGSL over the inputs x, y, z, w, v, u in `computeType`, the scalars s0, s1 and the
 *  linear output index i: u32) elementwise; no autograd. */
export function mapRaw(name: string, expr: string, inputs: Tensor[], outShape: readonly number[], outType: DType, computeType: DType, scalars: number[] = []): Tensor {
  return elementwise(name, expr, inputs, outShape, outType, inputs.map(() => computeType), scalars);
}

/** A constant tensor, built like any elementwise op (so it fuses into the op that reads it). */
function lazyFull(shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  const expr = dtype === 'bool' ? 'select(0u, 1u, s0 != 0.0)' : isFloat(dtype) ? 's0' : dtype === 'i32' ? 'i32(s0)' : 'u32(s0)';
  return elementwise('fill', expr, [], shape, dtype, [], [value]);
}

const PARAMS = ['x', 'y', 'z', 'w', 'v', 'u'];
/** Like mapRaw, writing into an existing view `out` (which may be strided). */
export function mapInto(name: string, expr: string, inputs: View[], out: View, computeType: DType, scalars: number[] = []): void {
  const key = `${name}\u0000${expr}\u0000${inputs.length}\u0000${computeType}\u0000${out.dtype}`;
  let code = mapCode.get(key);
  if (!code) {
    const ct = WGSL_COMPUTE[computeType];
    const outT = WGSL_COMPUTE[out.dtype];
    const fn = `op_${name}`;
    const args = inputs.map((_, i) => `${PARAMS[i]}: ${ct}`).join(', ');
    const helpers = `${ELEMENTWISE_HELPERS}\nfn ${fn}(${args}${inputs.length ? ', ' : ''}s0: f32, s1: f32, i: u32) -> ${outT} { return ${outT}(${expr}); }`;
    const call = `${fn}(${inputs.map((_, i) => `${ct}(${'abcdefgh'[i]})`).join(', ')}${inputs.length ? ', ' : ''}s0, s1, i)`;
    mapCode.set(key, (code = { helpers, call }));
  }
  launchMap({ name, expr: code.call, inputs, out, scalars, helpers: code.helpers });
}
/** The generated helper text and call of each (name, expression, arity, types) seen: built once,
 *  so that every launch passes the same strings (cheap to look up). */
const mapCode = new Map<string, { helpers: string; call: string }>();

function unaryForward(op: UnaryOp, t: Tensor, scalars: number[]): Tensor {
  if (!isFloat(t.dtype) && !op.integer) throw new Error(`${op.name}: needs a float tensor, got ${t.dtype}`);
  if (t.dtype === 'u32' && op.signedOnly) throw new Error(`${op.name}: not defined for u32 tensors (cast to i32 first)`);
  const ct: DType = isFloat(t.dtype) ? 'f32' : t.dtype === 'bool' ? 'i32' : t.dtype;
  // f16 in, f16 out (computed in f32), as PyTorch.
  const y = mapRaw(op.name, op.forward, [t], t.shape, t.dtype === 'f16' ? 'f16' : ct, ct, scalars);
  if (op.backward && isFloat(t.dtype)) {
    const bw = op.backward;
    const usesY = /\by\b/.test(bw);
    record(y, op.name, [t], (g) => {
      const inputs = usesY ? [t, y, g] : [t, g];
      const expr = usesY ? bw : bw.replace(/\bg\b/g, 'y');
      return [mapRaw(`${op.name}_bw`, expr.replace(/\bg\b/g, 'z'), inputs, t.shape, 'f32', 'f32', scalars)];
    });
  }
  return y;
}

type UnaryName = keyof typeof UNARY_OPS;
const unary = (name: UnaryName) => (t: Tensor) => unaryForward(UNARY_OPS[name], t, []);

export const neg = unary('neg');
export const abs = unary('abs');
export const exp = unary('exp');
export const log = unary('log');
export const log1p = unary('log1p');
export const expm1 = unary('expm1');
export const sqrt = unary('sqrt');
export const rsqrt = unary('rsqrt');
export const square = unary('square');
export const reciprocal = unary('reciprocal');
export const sin = unary('sin');
export const cos = unary('cos');
export const relu = unary('relu');
export const relu6 = unary('relu6');
export const hardsigmoid = unary('hardsigmoid');
export const hardswish = unary('hardswish');
export const sigmoid = unary('sigmoid');
export const logsigmoid = unary('logsigmoid');
export const tanh = unary('tanh');
export const silu = unary('silu');
export const softplus = unary('softplus');
export const gelu = unary('gelu');
export const sign = unary('sign');
export const floor = unary('floor');
export const ceil = unary('ceil');
export const round = unary('round');
export const addScalar = (t: Tensor, s: number) => unaryForward(UNARY_OPS.addScalar, t, [s]);
export const mulScalar = (t: Tensor, s: number) => unaryForward(UNARY_OPS.mulScalar, t, [s]);
export const rsubScalar = (t: Tensor, s: number) => unaryForward(UNARY_OPS.rsubScalar, t, [s]);
export const powScalar = (t: Tensor, s: number) => unaryForward(UNARY_OPS.powScalar, t, [s]);
export const leakyRelu = (t: Tensor, slope = 0.01) => unaryForward(UNARY_OPS.leakyRelu, t, [slope]);
export function clamp(t: Tensor, min = -Infinity, max = Infinity): Tensor {
  return unaryForward(UNARY_OPS.clamp, t, [Math.max(min, -3.4028234663852886e38), Math.min(max, 3.4028234663852886e38)]);
}

/** A 0-d f32 operand (a number, a scalar tensor) does not promote an f16 tensor, as in PyTorch
 *  where dimensioned tensors decide the result type. */
function binaryType(a: Tensor, b: Tensor): DType {
  if (a.dtype === 'f16' && b.dtype === 'f32' && b.ndim === 0) return 'f16';
  if (b.dtype === 'f16' && a.dtype === 'f32' && a.ndim === 0) return 'f16';
  return promote(a.dtype, b.dtype);
}

function binaryForward(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const ct = binaryType(a, b);
  if (!isFloat(ct) && !op.integer) throw new Error(`${op.name}: needs float tensors, got ${a.dtype} and ${b.dtype}`);
  const shape = broadcastShapes(a.shape, b.shape);
  const outType: DType = op.out === 'bool' ? 'bool' : ct;
  const out = mapRaw(op.name, isFloat(ct) && op.forwardFloat ? op.forwardFloat : op.forward, [a, b], shape, outType, ct);
  if (op.gx && isFloat(ct)) {
    const { gx, gy } = op;
    record(out, op.name, [a, b], (g) => {
      const grad = (expr: string, target: Tensor, suffix: string) => {
        if (!target.requiresGrad) return null;
        if (expr === 'g') return sumToShape(g, target.shape);
        if (expr === '-g') return sumToShape(neg(g), target.shape);
        const full = mapRaw(`${op.name}_${suffix}`, expr.replace(/\bg\b/g, 'z'), [a, b, g], shape, 'f32', 'f32');
        const r = sumToShape(full, target.shape);
        if (r !== full) full.dispose();
        return r;
      };
      return [grad(gx!, a, 'gx'), grad(gy!, b, 'gy')];
    });
  }
  return out;
}

type BinaryName = keyof typeof BINARY_OPS;
type Operand = Tensor | number;
/** A 0-d tensor for a number operand: integer-typed only when `like` is and `v` is an integer
 *  (so `add(intTensor, 0.5)` promotes to f32 instead of truncating 0.5, as in PyTorch). */
function scalarTensor(v: number, like: Tensor | undefined): Tensor {
  if (!like || isFloat(like.dtype) || !Number.isInteger(v)) return lazyFull([], v, 'f32');
  return lazyFull([], v, like.dtype === 'bool' ? 'i32' : like.dtype);
}
const binary = (name: BinaryName) => (a: Operand, b: Operand): Tensor => {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`${name}: at least one operand must be a tensor`);
  const ta = typeof a === 'number' ? scalarTensor(a, b as Tensor) : a;
  const tb = typeof b === 'number' ? scalarTensor(b, a as Tensor) : b;
  const out = binaryForward(BINARY_OPS[name], ta, tb);
  // Scalar operands are temporaries; a recorded backward still needs them (freed with the graph).
  if (!out.gradFn) for (const t of [ta, tb]) if (t !== a && t !== b) t.dispose();
  return out;
};

export const add = binary('add');
export const sub = binary('sub');
export const mul = binary('mul');
export const div = binary('div');
export const pow = binary('pow');
export const maximum = binary('maximum');
export const minimum = binary('minimum');
export const atan2 = binary('atan2');
export const eq = binary('eq');
export const ne = binary('ne');
export const lt = binary('lt');
export const le = binary('le');
export const gt = binary('gt');
export const ge = binary('ge');
export const logicalAnd = binary('logicalAnd');
export const logicalOr = binary('logicalOr');

export function logicalNot(t: Tensor): Tensor {
  return mapRaw('logicalNot', 'select(0u, 1u, x == 0)', [t], t.shape, 'bool', t.dtype === 'bool' ? 'u32' : t.dtype);
}

/** cond ? x : y, broadcasting all three. */
export function where(cond: Tensor, x: Operand, y: Operand): Tensor {
  // Two number branches are integer-typed only when both are integers (torch.where(c, 1, 0)).
  const bothNumbers = typeof x === 'number' && typeof y === 'number';
  const intPair = bothNumbers && Number.isInteger(x) && Number.isInteger(y);
  const tx = typeof x === 'number' ? (bothNumbers ? lazyFull([], x, intPair ? 'i32' : 'f32') : scalarTensor(x, y as Tensor)) : x;
  const ty = typeof y === 'number' ? (bothNumbers ? lazyFull([], y, intPair ? 'i32' : 'f32') : scalarTensor(y, tx)) : y;
  const ct = promote(tx.dtype, ty.dtype);
  const shape = broadcastShapes(cond.shape, broadcastShapes(tx.shape, ty.shape));
  const c = WGSL_COMPUTE[cond.dtype];
  const out = elementwise('where', `select(z, y, x != ${c}(0))`, [cond, tx, ty], shape, ct, [cond.dtype, ct, ct]);
  return record(out, 'where', [tx, ty], (g) => {
    const zero = lazyFull([], 0);
    const gx = tx.requiresGrad ? sumToShape(where(cond, g, zero), tx.shape) : null;
    const gy = ty.requiresGrad ? sumToShape(where(cond, zero, g), ty.shape) : null;
    zero.dispose();
    return [gx, gy];
  });
}

/** Convert to another dtype (float -> int truncates toward zero). Gradient flows float->float. */
export function cast(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  const expr = dtype === 'bool' ? `select(0u, 1u, x != ${WGSL_COMPUTE[t.dtype]}(0))` : 'x';
  const out = elementwise('cast', expr, [t], t.shape, dtype, [t.dtype]);
  if (isFloat(dtype) && isFloat(t.dtype)) record(out, 'cast', [t], (g) => [cast(g, t.dtype)]);
  return out;
}

/** `t` in f32: a (differentiable) f32 copy of an f16 tensor, any other tensor itself. Ops that
 *  compute in f32 only (autocast's f32 list, ops without f16 kernels) take their inputs through it. */
export function toF32(t: Tensor): Tensor {
  return t.dtype === 'f16' ? cast(t, 'f32') : t;
}

installAutogradOps({
  add: (a, b) => add(a, b),
  copy: (a) => contiguousCopy(a),
  onesLike: (a) => lazyFull(a.shape, 1, a.dtype),
  cast: (a, dtype) => cast(a, dtype),
});
