import { WGSL_NAN } from '../define-kernel';

// The long tail of elementwise ops, declared once as data (webgpu-torch style): each entry's WGSL
// forward expression and its backward expression; kernels and autograd are generated from this
// table in engine/ops/elementwise.ts. Float ops compute in f32.
//
// Unary forward: `x` is the input, `s0`/`s1` optional scalars. Unary backward: `x` input, `y`
// output, `g` the output's gradient. Binary forward: `x`, `y` the operands. Binary backward: `x`,
// `y`, `g`; `gx` and `gy` are the gradients of x and y before un-broadcasting.

export interface UnaryOp {
  name: string;
  forward: string;
  /** Backward expression in x, y (output), g; absent for non-differentiable ops. */
  backward?: string;
  /** Number of f32 scalar parameters (s0, s1). */
  scalars?: number;
  /** Whether the op is defined for integer dtypes too (computed in the integer type). */
  integer?: boolean;
  /** Integer support excludes u32 (WGSL has no unary minus or sign() for unsigned values). */
  signedOnly?: boolean;
}

export const UNARY_OPS = {
  neg: { name: 'neg', forward: '-x', backward: '-g', integer: true, signedOnly: true },
  abs: { name: 'abs', forward: 'abs(x)', backward: 'g * sign(x)', integer: true },
  exp: { name: 'exp', forward: 'exp(x)', backward: 'g * y' },
  log: { name: 'log', forward: 'log(x)', backward: 'g / x' },
  log1p: { name: 'log1p', forward: 'log1p_(x)', backward: 'g / (1.0 + x)' },
  expm1: { name: 'expm1', forward: 'expm1_(x)', backward: 'g * (y + 1.0)' },
  sqrt: { name: 'sqrt', forward: 'sqrt(x)', backward: 'g * 0.5 / y' },
  rsqrt: { name: 'rsqrt', forward: 'inverseSqrt(x)', backward: 'g * -0.5 * y * y * y' },
  square: { name: 'square', forward: 'x * x', backward: 'g * 2.0 * x', integer: true },
  reciprocal: { name: 'reciprocal', forward: '1.0 / x', backward: '-g * y * y' },
  sin: { name: 'sin', forward: 'sin(x)', backward: 'g * cos(x)' },
  cos: { name: 'cos', forward: 'cos(x)', backward: '-g * sin(x)' },
  // NaN passes through relu/relu6/clamp/maximum/minimum as in PyTorch (WGSL max/min/clamp may drop it).
  relu: { name: 'relu', forward: 'select(max(x, 0.0), x, isnan_(x))', backward: 'select(0.0, g, x > 0.0)' },
  relu6: { name: 'relu6', forward: 'select(clamp(x, 0.0, 6.0), x, isnan_(x))', backward: 'select(0.0, g, x > 0.0 && x < 6.0)' },
  // PyTorch's hardsigmoid: relu6(x + 3) / 6, gradient 1/6 strictly inside (-3, 3).
  hardsigmoid: { name: 'hardsigmoid', forward: 'clamp(x / 6.0 + 0.5, 0.0, 1.0)', backward: 'select(0.0, g / 6.0, x > -3.0 && x < 3.0)' },
  hardswish: { name: 'hardswish', forward: 'x * clamp(x / 6.0 + 0.5, 0.0, 1.0)', backward: 'select(select(g * (x / 3.0 + 0.5), g, x >= 3.0), 0.0, x <= -3.0)' },
  sigmoid: { name: 'sigmoid', forward: 'sigmoid_(x)', backward: 'g * y * (1.0 - y)' },
  logsigmoid: { name: 'logsigmoid', forward: '-softplus_(-x)', backward: 'g * (1.0 - sigmoid_(x))' },
  tanh: { name: 'tanh', forward: 'tanh(x)', backward: 'g * (1.0 - y * y)' },
  silu: { name: 'silu', forward: 'x * sigmoid_(x)', backward: 'g * (sigmoid_(x) * (1.0 + x * (1.0 - sigmoid_(x))))' },
  softplus: { name: 'softplus', forward: 'softplus_(x)', backward: 'g * sigmoid_(x)' },
  gelu: { name: 'gelu', forward: '0.5 * x * (1.0 + erf_(x * 0.7071067811865476))', backward: 'g * (0.5 * (1.0 + erf_(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x))' },
  sign: { name: 'sign', forward: 'sign(x)', integer: true, signedOnly: true },
  floor: { name: 'floor', forward: 'floor(x)' },
  ceil: { name: 'ceil', forward: 'ceil(x)' },
  round: { name: 'round', forward: 'round(x)' },
  // Scalar-parameter ops.
  addScalar: { name: 'addScalar', forward: 'x + s0', backward: 'g', scalars: 1 },
  mulScalar: { name: 'mulScalar', forward: 'x * s0', backward: 'g * s0', scalars: 1 },
  rsubScalar: { name: 'rsubScalar', forward: 's0 - x', backward: '-g', scalars: 1 },
  powScalar: { name: 'powScalar', forward: 'pow_(x, s0)', backward: 'g * s0 * pow_(x, s0 - 1.0)', scalars: 1 },
  clamp: { name: 'clamp', forward: 'select(clamp(x, s0, s1), x, isnan_(x))', backward: 'select(0.0, g, x >= s0 && x <= s1)', scalars: 2 },
  leakyRelu: { name: 'leakyRelu', forward: 'select(x * s0, x, x > 0.0)', backward: 'select(g * s0, g, x > 0.0)', scalars: 1 },
} satisfies Record<string, UnaryOp>;

export interface BinaryOp {
  name: string;
  forward: string;
  gx?: string;
  gy?: string;
  /** Result dtype: 'same' (the promoted input dtype) or 'bool' for comparisons. */
  out?: 'same' | 'bool';
  /** Forward used when computing in f32, where it must differ from the integer one (NaN rules). */
  forwardFloat?: string;
  integer?: boolean;
}

export const BINARY_OPS = {
  add: { name: 'add', forward: 'x + y', gx: 'g', gy: 'g', integer: true },
  sub: { name: 'sub', forward: 'x - y', gx: 'g', gy: '-g', integer: true },
  mul: { name: 'mul', forward: 'x * y', gx: 'g * y', gy: 'g * x', integer: true },
  div: { name: 'div', forward: 'x / y', gx: 'g / y', gy: '-g * x / (y * y)' },
  pow: { name: 'pow', forward: 'pow_(x, y)', gx: 'g * y * pow_(x, y - 1.0)', gy: 'g * pow_(x, y) * log(x)' },
  // Ties split the gradient equally between the operands, as PyTorch does.
  maximum: { name: 'maximum', forward: 'max(x, y)', forwardFloat: 'select(max(x, y), x + y, isnan_(x) || isnan_(y))', gx: 'select(select(0.0, 0.5 * g, x == y), g, x > y)', gy: 'select(select(0.0, 0.5 * g, x == y), g, y > x)', integer: true },
  minimum: { name: 'minimum', forward: 'min(x, y)', forwardFloat: 'select(min(x, y), x + y, isnan_(x) || isnan_(y))', gx: 'select(select(0.0, 0.5 * g, x == y), g, x < y)', gy: 'select(select(0.0, 0.5 * g, x == y), g, y < x)', integer: true },
  atan2: { name: 'atan2', forward: 'atan2(x, y)', gx: 'g * y / (x * x + y * y)', gy: '-g * x / (x * x + y * y)' },
  eq: { name: 'eq', forward: 'select(0u, 1u, x == y)', out: 'bool', integer: true },
  // !(x == y): lavapipe compiles != as an ordered compare (false for NaN); IEEE says NaN != NaN.
  ne: { name: 'ne', forward: 'select(0u, 1u, !(x == y))', out: 'bool', integer: true },
  lt: { name: 'lt', forward: 'select(0u, 1u, x < y)', out: 'bool', integer: true },
  le: { name: 'le', forward: 'select(0u, 1u, x <= y)', out: 'bool', integer: true },
  gt: { name: 'gt', forward: 'select(0u, 1u, x > y)', out: 'bool', integer: true },
  ge: { name: 'ge', forward: 'select(0u, 1u, x >= y)', out: 'bool', integer: true },
  logicalAnd: { name: 'logicalAnd', forward: 'select(0u, 1u, x != 0 && y != 0)', out: 'bool', integer: true },
  logicalOr: { name: 'logicalOr', forward: 'select(0u, 1u, x != 0 || y != 0)', out: 'bool', integer: true },
} satisfies Record<string, BinaryOp>;

/** WGSL helpers the expressions above use (numerically careful versions). */
export const ELEMENTWISE_HELPERS = /* wgsl */ `
${WGSL_NAN}
// By the bits: compilers may fold \`x != x\` to false.
fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn softplus_(x: f32) -> f32 { return max(x, 0.0) + log1p_(exp(-abs(x))); }
fn log1p_(x: f32) -> f32 {
  // log(1+x) with the Goldberg correction for small x.
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  return log(u) * x / (u - 1.0);
}
fn expm1_(x: f32) -> f32 {
  if (abs(x) < 1e-5) { return x + 0.5 * x * x; }
  return exp(x) - 1.0;
}
// pow with PyTorch's conventions for negative bases with integral exponents.
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x >= 0.0) { return pow(x, y); }
  if (floor(y) != y) { return nan_f32(); }
  let r = pow(-x, y);
  if (fract(y * 0.5) != 0.0) { return -r; }
  return r;
}
// erf (Abramowitz-Stegun 7.1.26 refined; |err| < 1.5e-7).
fn erf_(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-x * x);
  return select(-y, y, x >= 0.0);
}`;
