// The generic elementwise kernel: out[view] = expr(in0[view], in1[view], ...), where every operand
// is a strided view (shape, strides, element offset) broadcast to the output's shape. One WGSL
// template covers unary and binary ops, fused chains, casts, strided copies (contiguous(), concat,
// pad, slice backward), fills and RNG. Specialisations (rank-independent): the dtype of every
// operand and whether each operand is contiguous with the output's shape (then it is indexed
// linearly, skipping the div/mod address arithmetic).
import { type DType, WGSL_COMPUTE, WGSL_STORAGE } from '../../core/dtype';
import { type KernelDef, Params, rt, WGSL_LINEAR_WORKGROUP } from '../../core/runtime';

export const MAX_RANK = 8;
const WG = 256;

/** A strided view of a GPU buffer, the operand form kernels take. */
export interface View {
  buffer: GPUBuffer;
  dtype: DType;
  shape: readonly number[];
  strides: readonly number[];
  offset: number;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** True when the view's elements lie densely in row-major order of `shape` (size-1 dims free). */
export function isDense(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] === 1) continue;
    if (strides[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/** Strides of `view` broadcast to `shape` (right-aligned; size-1 or missing dims get stride 0). */
export function broadcastStrides(view: { shape: readonly number[]; strides: readonly number[] }, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length).fill(0);
  const off = shape.length - view.shape.length;
  if (off < 0) throw new Error(`cannot broadcast [${view.shape}] to [${shape}]`);
  for (let d = 0; d < view.shape.length; d++) {
    const n = view.shape[d]!;
    const target = shape[d + off]!;
    if (n === target) out[d + off] = n === 1 ? 0 : view.strides[d]!;
    else if (n === 1) out[d + off] = 0;
    else throw new Error(`cannot broadcast [${view.shape}] to [${shape}]`);
  }
  return out;
}

export interface MapSpec {
  /** WGSL expression of the inputs `a`, `b`, `c`, `d`... (in their compute types), the scalars
   *  `s0..s3` (f32), the linear output index `i` (u32) and helpers (`rand_u01(i, seed)`). */
  expr: string;
  inputs: View[];
  out: View;
  scalars?: number[];
  /** Extra WGSL functions the expression uses. */
  helpers?: string;
  /** Name for labels and the cache key (the expression is in the key too). */
  name: string;
}

const LETTERS = 'abcdefgh';

const RNG_HELPERS = /* wgsl */ `
fn pcg_hash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
// Uniform in (0, 1): from a 2-round hash of (index, seed), 24 bits of mantissa.
fn rand_u01(i: u32, seed: u32) -> f32 {
  let h = pcg_hash(i ^ pcg_hash(seed));
  let h2 = pcg_hash(h + seed * 0x9e3779b9u);
  return (f32(h2 >> 8u) + 0.5) / 16777216.0;
}
fn rand_normal(i: u32, seed: u32) -> f32 {
  let u1 = rand_u01(2u * i, seed);
  let u2 = rand_u01(2u * i + 1u, seed);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}`;

function buildCode(spec: MapSpec, modes: boolean[], outDense: boolean): string {
  const { inputs, out } = spec;
  const k = inputs.length;
  const needF16 = out.dtype === 'f16' || inputs.some((v) => v.dtype === 'f16');
  const lines: string[] = [];
  if (needF16) lines.push('enable f16;');
  inputs.forEach((v, j) => lines.push(`@group(0) @binding(${j}) var<storage, read> in${j}: array<${WGSL_STORAGE[v.dtype]}>;`));
  lines.push(`@group(0) @binding(${k}) var<storage, read_write> out: array<${WGSL_STORAGE[out.dtype]}>;`);
  const kv = Math.max(1, Math.ceil(k / 4));
  lines.push(`struct P {
  numel: u32, rank: u32, out_off: u32, seed: u32,
  s0: f32, s1: f32, s2: f32, s3: f32,
  shape: array<vec4u, 2>,
  out_st: array<vec4u, 2>,
  in_off: array<vec4u, ${kv}>,
  in_st: array<vec4u, ${Math.max(1, 2 * k)}>,
}`);
  lines.push(`@group(0) @binding(${k + 1}) var<uniform> p: P;`);
  lines.push(WGSL_LINEAR_WORKGROUP);
  lines.push(RNG_HELPERS);
  if (spec.helpers) lines.push(spec.helpers);
  lines.push(`@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.numel) { return; }
  let s0 = p.s0; let s1 = p.s1; let s2 = p.s2; let s3 = p.s3; let seed = p.seed;`);
  const anyStrided = !outDense || modes.some((m) => !m);
  if (anyStrided) {
    lines.push(`  var o = p.out_off;`);
    inputs.forEach((_, j) => lines.push(`  var x${j} = p.in_off[${j >> 2}][${j & 3}];`));
    lines.push(`  var rem = i;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let n = p.shape[d >> 2][d & 3];
    let idx = rem % n;
    rem = rem / n;
    o += idx * p.out_st[d >> 2][d & 3];`);
    inputs.forEach((_, j) => {
      if (!modes[j]) lines.push(`    x${j} += idx * p.in_st[${2 * j} + (d >> 2)][d & 3];`);
    });
    lines.push('  }');
  }
  inputs.forEach((v, j) => {
    const idx = modes[j] ? `p.in_off[${j >> 2}][${j & 3}] + i` : `x${j}`;
    lines.push(`  let ${LETTERS[j]} = ${WGSL_COMPUTE[v.dtype]}(in${j}[${idx}]);`);
  });
  const oIdx = outDense ? 'p.out_off + i' : 'o';
  lines.push(`  out[${oIdx}] = ${WGSL_STORAGE[out.dtype]}(${spec.expr});`);
  lines.push('}');
  return lines.join('\n');
}

const defCache = new Map<string, KernelDef>();

/** Record the elementwise kernel. Output and inputs are views; inputs broadcast to out.shape. */
export function launchMap(spec: MapSpec, seed = 0): void {
  const { inputs, out } = spec;
  const shape = out.shape;
  if (shape.length > MAX_RANK) throw new Error(`${spec.name}: rank ${shape.length} > ${MAX_RANK}`);
  if (inputs.length > 8) throw new Error(`${spec.name}: at most 8 inputs`);
  const numel = numelOf(shape);
  if (numel === 0) return;
  const outDense = isDense(shape, out.strides);
  const inStrides = inputs.map((v) => broadcastStrides(v, shape));
  // An input is linear when it is dense and has the output's shape (no broadcasting); a size-1 dim
  // broadcast gives stride 0 and is not linear unless numel matches.
  const modes = inputs.map((v, j) => outDense && numelOf(v.shape) === numel && isDense(shape, inStrides[j]!));
  const key = `map:${spec.name}:${spec.expr}:${inputs.map((v, j) => v.dtype + (modes[j] ? 'c' : 's')).join(',')}>${out.dtype}${outDense ? 'c' : 's'}`;
  let def = defCache.get(key);
  if (!def) {
    def = { key, code: buildCode(spec, modes, outDense), bindings: [...inputs.map(() => 'read' as const), 'rw'], uniform: true };
    defCache.set(key, def);
  }
  const sc = spec.scalars ?? [];
  const p = new Params(96)
    .u(numel, shape.length, out.offset, seed >>> 0)
    .f(sc[0] ?? 0, sc[1] ?? 0, sc[2] ?? 0, sc[3] ?? 0)
    .uArray(shape, 8, 1)
    .uArray(out.strides, 8);
  const offs = inputs.map((v) => v.offset);
  p.uArray(offs, Math.max(1, Math.ceil(inputs.length / 4)) * 4);
  if (inputs.length === 0) p.uArray([], 8);
  for (const s of inStrides) p.uArray(s, 8);
  rt().dispatch(def, [...inputs.map((v) => v.buffer), out.buffer], p.bytes(), Math.ceil(numel / WG));
}
