// The float64 references of every elementwise op of kernels/elementwise/table.ts (value and
// derivatives) and how each is called; shared by the per-op tests and the fused-chain tests.
import * as cg from '../../../engine';
import type { Tensor } from '../../../engine';
import type { UNARY_OPS, BINARY_OPS } from '../../../kernels/elementwise/table';
/** erf in float64: Taylor series (|x| <= 3 here, ~1e-13 accurate). */
export function erf(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
export const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
/** Round half to even (WGSL round, torch.round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface UnaryCase {
  f: (x: number) => number;
  df?: (x: number) => number;
  run: (t: Tensor) => Tensor;
  lo?: number;
  hi?: number;
  atol?: number;
}

export const S = { add: 0.75, mul: -1.5, rsub: 2.25, pow: 2.5, lo: -0.6, hi: 0.9, slope: 0.07 };
export const UNARY: Record<keyof typeof UNARY_OPS, UnaryCase> = {
  neg: { f: (x) => -x, df: () => -1, run: cg.neg },
  abs: { f: Math.abs, df: Math.sign, run: cg.abs },
  exp: { f: Math.exp, df: Math.exp, run: cg.exp, lo: -3, hi: 3 },
  log: { f: Math.log, df: (x) => 1 / x, run: cg.log, lo: 0.2, hi: 4 },
  log1p: { f: Math.log1p, df: (x) => 1 / (1 + x), run: cg.log1p, lo: -0.5, hi: 3 },
  expm1: { f: Math.expm1, df: Math.exp, run: cg.expm1, lo: -2, hi: 2 },
  sqrt: { f: Math.sqrt, df: (x) => 0.5 / Math.sqrt(x), run: cg.sqrt, lo: 0.2, hi: 4 },
  rsqrt: { f: (x) => 1 / Math.sqrt(x), df: (x) => -0.5 * x ** -1.5, run: cg.rsqrt, lo: 0.3, hi: 4 },
  square: { f: (x) => x * x, df: (x) => 2 * x, run: cg.square },
  reciprocal: { f: (x) => 1 / x, df: (x) => -1 / (x * x), run: cg.reciprocal, lo: 0.3, hi: 3 },
  sin: { f: Math.sin, df: Math.cos, run: cg.sin, lo: -4, hi: 4 },
  cos: { f: Math.cos, df: (x) => -Math.sin(x), run: cg.cos, lo: -4, hi: 4 },
  relu: { f: (x) => Math.max(x, 0), df: (x) => (x > 0 ? 1 : 0), run: cg.relu },
  relu6: { f: (x) => Math.min(Math.max(x, 0), 6), df: (x) => (x > 0 && x < 6 ? 1 : 0), run: cg.relu6, lo: -3, hi: 9 },
  hardsigmoid: { f: (x) => Math.min(Math.max(x / 6 + 0.5, 0), 1), df: (x) => (x > -3 && x < 3 ? 1 / 6 : 0), run: cg.hardsigmoid, lo: -5, hi: 5 },
  hardswish: {
    f: (x) => (x * Math.min(Math.max(x + 3, 0), 6)) / 6,
    df: (x) => (x <= -3 ? 0 : x >= 3 ? 1 : (2 * x + 3) / 6),
    run: cg.hardswish,
    lo: -5,
    hi: 5,
  },
  sigmoid: { f: sigmoid, df: (x) => sigmoid(x) * (1 - sigmoid(x)), run: cg.sigmoid, lo: -6, hi: 6 },
  logsigmoid: { f: (x) => -softplus(-x), df: (x) => 1 - sigmoid(x), run: cg.logsigmoid, lo: -6, hi: 6 },
  tanh: { f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2, run: cg.tanh, lo: -3, hi: 3 },
  silu: { f: (x) => x * sigmoid(x), df: (x) => sigmoid(x) * (1 + x * (1 - sigmoid(x))), run: cg.silu, lo: -5, hi: 5 },
  softplus: { f: softplus, df: sigmoid, run: cg.softplus, lo: -5, hi: 5 },
  gelu: {
    f: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    df: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
    run: cg.gelu,
    lo: -3,
    hi: 3,
    atol: 3e-6,
  },
  sign: { f: Math.sign, run: cg.sign },
  floor: { f: Math.floor, run: cg.floor, lo: -4, hi: 4 },
  ceil: { f: Math.ceil, run: cg.ceil, lo: -4, hi: 4 },
  round: { f: roundHalfEven, run: cg.round, lo: -4, hi: 4 },
  addScalar: { f: (x) => x + S.add, df: () => 1, run: (t) => cg.addScalar(t, S.add) },
  mulScalar: { f: (x) => x * S.mul, df: () => S.mul, run: (t) => cg.mulScalar(t, S.mul) },
  rsubScalar: { f: (x) => S.rsub - x, df: () => -1, run: (t) => cg.rsubScalar(t, S.rsub) },
  powScalar: { f: (x) => x ** S.pow, df: (x) => S.pow * x ** (S.pow - 1), run: (t) => cg.powScalar(t, S.pow), lo: 0.2, hi: 2 },
  clamp: { f: (x) => Math.min(Math.max(x, S.lo), S.hi), df: (x) => (x >= S.lo && x <= S.hi ? 1 : 0), run: (t) => cg.clamp(t, S.lo, S.hi) },
  leakyRelu: { f: (x) => (x > 0 ? x : S.slope * x), df: (x) => (x > 0 ? 1 : S.slope), run: (t) => cg.leakyRelu(t, S.slope) },
};

export interface BinaryCase {
  f: (x: number, y: number) => number;
  gx?: (x: number, y: number) => number;
  gy?: (x: number, y: number) => number;
  run: (a: Tensor | number, b: Tensor | number) => Tensor;
  /** Input range (both operands). */
  lo?: number;
  hi?: number;
  bool?: boolean;
  integer?: boolean;
}

export const b01 = (v: boolean) => (v ? 1 : 0);
export const tieSplit = (win: boolean, tie: boolean) => (tie ? 0.5 : win ? 1 : 0);
export const BINARY: Record<keyof typeof BINARY_OPS, BinaryCase> = {
  add: { f: (x, y) => x + y, gx: () => 1, gy: () => 1, run: cg.add, integer: true },
  sub: { f: (x, y) => x - y, gx: () => 1, gy: () => -1, run: cg.sub, integer: true },
  mul: { f: (x, y) => x * y, gx: (_, y) => y, gy: (x) => x, run: cg.mul, integer: true },
  div: { f: (x, y) => x / y, gx: (_, y) => 1 / y, gy: (x, y) => -x / (y * y), run: cg.div, lo: 0.4, hi: 3 },
  pow: { f: (x, y) => x ** y, gx: (x, y) => y * x ** (y - 1), gy: (x, y) => x ** y * Math.log(x), run: cg.pow, lo: 0.3, hi: 2.5 },
  maximum: { f: Math.max, gx: (x, y) => tieSplit(x > y, x === y), gy: (x, y) => tieSplit(y > x, x === y), run: cg.maximum, integer: true },
  minimum: { f: Math.min, gx: (x, y) => tieSplit(x < y, x === y), gy: (x, y) => tieSplit(y < x, x === y), run: cg.minimum, integer: true },
  atan2: { f: Math.atan2, gx: (x, y) => y / (x * x + y * y), gy: (x, y) => -x / (x * x + y * y), run: cg.atan2, lo: 0.2, hi: 2 },
  eq: { f: (x, y) => b01(x === y), run: cg.eq, bool: true, integer: true },
  ne: { f: (x, y) => b01(x !== y), run: cg.ne, bool: true, integer: true },
  lt: { f: (x, y) => b01(x < y), run: cg.lt, bool: true, integer: true },
  le: { f: (x, y) => b01(x <= y), run: cg.le, bool: true, integer: true },
  gt: { f: (x, y) => b01(x > y), run: cg.gt, bool: true, integer: true },
  ge: { f: (x, y) => b01(x >= y), run: cg.ge, bool: true, integer: true },
  logicalAnd: { f: (x, y) => b01(x !== 0 && y !== 0), run: cg.logicalAnd, bool: true, integer: true },
  logicalOr: { f: (x, y) => b01(x !== 0 || y !== 0), run: cg.logicalOr, bool: true, integer: true },
};
