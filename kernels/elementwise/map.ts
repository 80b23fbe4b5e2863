// The generic elementwise kernel: out[view] = expr(in0[view], in1[view], ...), where every operand
// is a strided view (shape, strides, element offset) broadcast to the output's shape. One WGSL
// template covers unary and binary ops, fused chains, casts, strided copies (contiguous(), concat,
// pad, slice backward), fills and RNG. The host first collapses the dims (collapseDims), so most
// broadcasts run at rank 2-3 and dense ops at rank 1; the kernel is specialised on the operand
// dtypes, that collapsed rank and, where every operand is 16-byte aligned with inner stride 1 or
// 0, a vec4 variant (see vecPlan); sizes and strides stay in the uniform block, so new shapes add
// no pipelines. `i` is the row-major linear output index, as before collapsing.
import { type DType, WGSL_COMPUTE, WGSL_STORAGE } from '../../runtime/dtype';
import { defineKernel, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { broadcastStrides, contiguousStrides, numelOf, type View } from '../../runtime/shape';
import { chunkForBinding, overBindingLimit } from '../large';

export const MAX_RANK = 8;
const WG = 256;

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
  /** Further outputs (at most 3) laid out exactly as `out` (shape, strides, offset): the expression
   *  then returns a struct with fields o0 (for `out`), o1, o2, o3 (engine/lazy.ts uses this to
   *  store the intermediates of a fused chain that are still needed). */
  extraOuts?: View[];
  /** More f32 uniforms, read in the helpers as `p.sx[k / 4][k % 4]` (value changes compile nothing). */
  extraScalars?: number[];
}

export const MAX_EXTRA_OUTS = 3;

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

/** Merge adjacent dims that are contiguous in every operand (stride[d] = stride[d+1] * n[d+1]) and
 *  drop size-1 dims, so that e.g. [296,128,14,14] * [296,1,14,14] runs as rank 3 and a dense or
 *  per-tensor-scalar op as rank 1. The row-major order of the outputs (and so `i`) is unchanged. */
export function collapseDims(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    if (n === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, j) => s[d] === outStrides[j]![last]! * outShape[last]!)) {
      outShape[last] *= n;
      continue;
    }
    outShape.push(n);
    strides.forEach((s, j) => outStrides[j]!.push(s[d]!));
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => s.push(0));
  }
  outShape.reverse();
  outStrides.forEach((s) => s.reverse());
  return { shape: outShape, strides: outStrides };
}

// Outputs per invocation. Measured on lavapipe (scripts/dev/elementwise-timing.ts, load ~14):
// 1 -> 8 -> 16 -> 32 took a 7.4M-output broadcast multiply 1.2 s -> 232 -> 180 -> 139 ms and a
// dense copy 850 -> 148 -> 96 -> 105 ms; 64 was within the noise of 32.
const RUN = 32;
let vec4Enabled = true;
/** Dev/bench: turn the vec4 variant off (every launch then takes the scalar run loop). */
export function setMapVec4(enabled: boolean): void {
  vec4Enabled = enabled;
}

// One invocation computes a run of up to RUN consecutive outputs along the innermost (collapsed)
// dim: its coordinates are decoded once per run (rank - 1 integer divisions, which lavapipe runs
// per lane on the CPU) and each element then only steps every operand by its inner stride.
// Internal names carry an m_ prefix so that expressions may use any short name.
/** What the map kernel's code depends on: the expression (and its name and helpers), the operand
 *  dtypes (`inTypes` comma-separated), the collapsed rank and the vec4 plan (`vec`: false, or one
 *  '0'/'1' per input, '1' = broadcast along the run). */
interface MapVariant {
  name: string;
  expr: string;
  /** The helpers' text, by number (see helpersId): the variant is looked up on every launch, and a
   *  kilobyte of helper text in its lookup string cost more than the rest of the launch. */
  helpers: number;
  inTypes: string;
  outType: DType;
  rank: number;
  vec: string | false;
  /** The extra outputs' dtypes, comma-separated ('' for none). */
  outs: string;
  /** How many extra scalars (p.sx). */
  nsx: number;
}

interface DecodedVariant {
  inputs: { dtype: DType }[];
  out: { dtype: DType };
  extra: DType[];
  vec: VecPlan | null;
}

function decodeVariant(v: MapVariant): DecodedVariant {
  const inputs = v.inTypes === '' ? [] : v.inTypes.split(',').map((t) => ({ dtype: t as DType }));
  const extra = v.outs === '' ? [] : (v.outs.split(',') as DType[]);
  return { inputs, out: { dtype: v.outType }, extra, vec: v.vec === false ? null : { broadcast: [...v.vec].map((c) => c === '1') } };
}

const elem = (t: string, v: boolean) => (v ? `vec4<${t}>` : t);

/** Storage binding of input j (present when the variant has more than j inputs). */
function input(j: number) {
  return {
    type: (v: MapVariant) => {
      const d = decodeVariant(v);
      return elem(WGSL_STORAGE[d.inputs[j]!.dtype], !!d.vec && !d.vec.broadcast[j]);
    },
    access: 'read',
    when: (v: MapVariant) => decodeVariant(v).inputs.length > j,
  } as const;
}

/** Storage binding of extra output k (1-based: out1, out2, out3). */
function extraOut(k: number) {
  return {
    type: (v: MapVariant) => elem(WGSL_STORAGE[decodeVariant(v).extra[k - 1]!], v.vec !== false),
    access: 'rw',
    when: (v: MapVariant) => decodeVariant(v).extra.length >= k,
  } as const;
}

const mapKernel = defineKernel({
  name: 'map',
  bindings: {
    in0: input(0), in1: input(1), in2: input(2), in3: input(3), in4: input(4), in5: input(5), in6: input(6), in7: input(7),
    out: { type: (v) => elem(WGSL_STORAGE[v.outType], v.vec !== false), access: 'rw' },
    out1: extraOut(1), out2: extraOut(2), out3: extraOut(3),
  },
  params: (v: MapVariant) => {
    const k = decodeVariant(v).inputs.length;
    return {
      runs: 'u32', inner: 'u32', out_off: 'u32', seed: 'u32',
      s0: 'f32', s1: 'f32', s2: 'f32', s3: 'f32',
      rpr: 'u32',
      shape: ['u32', 8, 1],
      out_st: ['u32', 8],
      in_off: ['u32', 4 * Math.max(1, Math.ceil(k / 4))],
      // Input j's strides at [8j, 8j + 8).
      in_st: ['u32', 4 * Math.max(1, 2 * k)],
      ...(v.nsx > 0 ? { sx: ['f32', 4 * Math.ceil(v.nsx / 4)] } : {}),
    } as const;
  },
  code: (v: MapVariant) => buildCode(v),
});

function buildCode(variant: MapVariant): string {
  const { inputs, out, vec } = decodeVariant(variant);
  const spec = variant;
  const rank = variant.rank;
  const lines: string[] = [];
  lines.push(WGSL_LINEAR_WORKGROUP);
  lines.push(RNG_HELPERS);
  const helpers = HELPERS[variant.helpers]!;
  if (helpers) lines.push(helpers);
  const el = (arr: string, d: number) => `${arr}[${d >> 2}][${d & 3}]`;
  const inSt = (j: number, d: number) => `p.in_st[${2 * j + (d >> 2)}][${d & 3}]`;
  const last = rank - 1;
  // Stores of the expression's value(s): one output, or the fields o0.. of its struct.
  const outs = [out.dtype, ...decodeVariant(variant).extra];
  const outName = (k: number) => (k === 0 ? 'out' : `out${k}`);
  const store = (dst: (k: number) => string) =>
    outs.length === 1
      ? `${dst(0)} = ${WGSL_STORAGE[out.dtype]}(${spec.expr});`
      : `let m_f = ${spec.expr}; ${outs.map((t, k) => `${dst(k)} = ${WGSL_STORAGE[t]}(m_f.o${k});`).join(' ')}`;
  lines.push(`@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m_t = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (m_t >= p.runs) { return; }
  let s0 = p.s0; let s1 = p.s1; let s2 = p.s2; let s3 = p.s3; let seed = p.seed;`);
  if (rank === 1) lines.push(`  let m_row = 0u;\n  let m_c0 = m_t * ${RUN}u;`);
  else lines.push(`  let m_row = m_t / p.rpr;\n  let m_c0 = (m_t - m_row * p.rpr) * ${RUN}u;`);
  lines.push(`  var m_o = p.out_off + m_c0 * ${el('p.out_st', last)};`);
  inputs.forEach((_, j) => lines.push(`  var m_x${j} = ${el('p.in_off', j)} + m_c0 * ${inSt(j, last)};`));
  if (rank > 1) {
    lines.push('  var m_rem = m_row;');
    for (let d = rank - 2; d >= 0; d--) {
      if (d > 0) lines.push(`  { let m_q = m_rem / ${el('p.shape', d)}; let m_idx = m_rem - m_q * ${el('p.shape', d)}; m_rem = m_q;`);
      else lines.push('  { let m_idx = m_rem;');
      lines.push(`    m_o += m_idx * ${el('p.out_st', d)};`);
      inputs.forEach((_, j) => lines.push(`    m_x${j} += m_idx * ${inSt(j, d)};`));
      lines.push('  }');
    }
  }
  if (vec) {
    // Operands with inner stride 0 hold one value per run; the others step one vec4 at a time.
    inputs.forEach((v, j) => {
      if (vec.broadcast[j]) lines.push(`  let ${LETTERS[j]} = ${WGSL_COMPUTE[v.dtype]}(in${j}[m_x${j}]);`);
      else lines.push(`  var m_v${j} = m_x${j} / 4u;`);
    });
    lines.push(`  var m_ov = m_o / 4u;
  let m_end = min(m_c0 + ${RUN}u, p.inner);
  for (var m_c = m_c0; m_c < m_end; m_c += 4u) {`);
    inputs.forEach((_, j) => {
      if (!vec.broadcast[j]) lines.push(`    let m_w${j} = in${j}[m_v${j}];`);
    });
    outs.forEach((t, k) => lines.push(`    var m_r${k}: vec4<${WGSL_STORAGE[t]}>;`));
    for (let e = 0; e < 4; e++) {
      const ls = inputs.map((v, j) => (vec.broadcast[j] ? '' : `let ${LETTERS[j]} = ${WGSL_COMPUTE[v.dtype]}(m_w${j}[${e}]); `)).join('');
      lines.push(`    { ${ls}let i = m_row * p.inner + m_c + ${e}u; ${store((k) => `m_r${k}[${e}]`)} }`);
    }
    outs.forEach((_, k) => lines.push(`    ${outName(k)}[m_ov] = m_r${k};`));
    lines.push('    m_ov++;');
    inputs.forEach((_, j) => {
      if (!vec.broadcast[j]) lines.push(`    m_v${j}++;`);
    });
    lines.push('  }\n}');
    return lines.join('\n');
  }
  lines.push(`  let m_so = ${el('p.out_st', last)};`);
  inputs.forEach((_, j) => lines.push(`  let m_sx${j} = ${inSt(j, last)};`));
  lines.push(`  let m_end = min(m_c0 + ${RUN}u, p.inner);
  var i = m_row * p.inner + m_c0;
  for (var m_c = m_c0; m_c < m_end; m_c++) {`);
  inputs.forEach((v, j) => lines.push(`    let ${LETTERS[j]} = ${WGSL_COMPUTE[v.dtype]}(in${j}[m_x${j}]);`));
  lines.push(`    ${store((k) => `${outName(k)}[m_o]`)}`);
  lines.push(`    m_o += m_so;`);
  inputs.forEach((_, j) => lines.push(`    m_x${j} += m_sx${j};`));
  lines.push('    i++;\n  }\n}');
  return lines.join('\n');
}

/** Operands read and written as vec4 along the inner dim (4x fewer, wider loads and stores on
 *  lavapipe); `broadcast[j]`: input j has inner stride 0 (one value per run). */
export interface VecPlan {
  broadcast: boolean[];
}

/** The vec4 plan (vec4<f16> for f16 operands: 8-byte loads, aligned as every offset is a multiple
 *  of 4 elements) when the collapsed inner size is a multiple of 4, the output
 *  and every other operand step 1 along it (16-byte aligned: offset and outer strides multiples of
 *  4) or 0 (broadcast along the row: e.g. a per-channel scale); else null. */
export function vecPlan(views: readonly View[], shape: readonly number[], strides: readonly (readonly number[])[]): VecPlan | null {
  const r = shape.length;
  if (shape[r - 1]! % 4 !== 0) return null;
  const aligned = (j: number) => views[j]!.offset % 4 === 0 && strides[j]!.every((st, d) => d === r - 1 || st % 4 === 0);
  if (strides[0]![r - 1] !== 1 || !aligned(0)) return null;
  const broadcast: boolean[] = [];
  for (let j = 1; j < views.length; j++) {
    const st = strides[j]![r - 1]!;
    if (st === 0) broadcast.push(true);
    else if (st === 1 && aligned(j)) broadcast.push(false);
    else return null;
  }
  return { broadcast };
}


/** Helper texts seen so far, numbered in order of first use (0: none). */
const HELPERS: string[] = [''];
const helperIds = new Map<string, number>([['', 0]]);
function helpersId(text: string): number {
  let id = helperIds.get(text);
  if (id === undefined) {
    id = HELPERS.length;
    HELPERS.push(text);
    helperIds.set(text, id);
  }
  return id;
}

/** Record the elementwise kernel. Output and inputs are views; inputs broadcast to out.shape. */
export function launchMap(spec: MapSpec, seed = 0): void {
  const { inputs, out } = spec;
  const shape = out.shape;
  if (shape.length > MAX_RANK) throw new Error(`${spec.name}: rank ${shape.length} > ${MAX_RANK}`);
  if (inputs.length > 8) throw new Error(`${spec.name}: at most 8 inputs`);
  const extra = spec.extraOuts ?? [];
  if (extra.length > MAX_EXTRA_OUTS) throw new Error(`${spec.name}: at most ${MAX_EXTRA_OUTS} extra outputs`);
  for (const e of extra) {
    if (e.offset !== out.offset || e.strides.join() !== out.strides.join() || e.shape.join() !== shape.join()) throw new Error(`${spec.name}: extra outputs must be laid out as the output`);
  }
  if (out.strides.length !== shape.length) throw new Error(`${spec.name}: output strides [${out.strides}] do not match shape [${shape}]`);
  const numel = numelOf(shape);
  if (numel === 0) return;
  if (overBindingLimit(out.buffer) || inputs.some((v) => overBindingLimit(v.buffer))) {
    if (extra.length) throw new Error(`${spec.name}: extra outputs over one storage binding are not supported`);
    return launchMapChunked(spec, seed);
  }
  const c = collapseDims(shape, [out.strides, ...inputs.map((v) => broadcastStrides(v, shape))]);
  const rank = c.shape.length;
  const vec = vec4Enabled && !extra.some((e) => e.dtype === 'f16') ? vecPlan([out, ...inputs], c.shape, c.strides) : null;
  const variant: MapVariant = {
    name: spec.name,
    expr: spec.expr,
    helpers: helpersId(spec.helpers ?? ''),
    inTypes: inputs.map((v) => v.dtype).join(','),
    outType: out.dtype,
    rank,
    vec: vec ? vec.broadcast.map(Number).join('') : false,
    outs: extra.map((v) => v.dtype).join(','),
    nsx: spec.extraScalars?.length ?? 0,
  };
  const inner = c.shape[rank - 1]!;
  const rpr = Math.ceil(inner / RUN);
  const runs = (numel / inner) * rpr;
  const sc = spec.scalars ?? [];
  const inSt: number[] = [];
  for (const s of c.strides.slice(1)) for (let d = 0; d < 8; d++) inSt.push(s[d] ?? 0);
  const buffers: Record<string, GPUBuffer> = { out: out.buffer };
  extra.forEach((v, k) => (buffers[`out${k + 1}`] = v.buffer));
  inputs.forEach((v, j) => (buffers[`in${j}`] = v.buffer));
  mapKernel.dispatch(
    variant,
    buffers as { out: GPUBuffer },
    {
      runs, inner, out_off: out.offset, seed: seed >>> 0,
      s0: sc[0] ?? 0, s1: sc[1] ?? 0, s2: sc[2] ?? 0, s3: sc[3] ?? 0,
      rpr,
      shape: c.shape,
      out_st: c.strides[0]!,
      in_off: inputs.map((v) => v.offset),
      in_st: inSt,
      ...(variant.nsx > 0 ? { sx: spec.extraScalars! } : {}),
    },
    Math.ceil(runs / WG),
  );
}

/** launchMap over operands larger than one storage binding: one launch per block of leading dims
 *  (kernels/large.ts), the linear index `i` of the expression shifted to the block's start. */
function launchMapChunked(spec: MapSpec, seed: number): void {
  const shape = spec.out.shape;
  // Plain views (a Tensor's buffer is a getter, which spreading would drop).
  const full: View[] = [spec.out, ...spec.inputs].map((v, j) => ({
    buffer: v.buffer, dtype: v.dtype, shape, strides: j === 0 ? v.strides : broadcastStrides(v, shape), offset: v.offset,
  }));
  const rowMajor = contiguousStrides(shape);
  const usesIndex = /\bi\b/.test(spec.expr);
  for (const c of chunkForBinding(shape, full)) {
    const base = c.start.reduce((acc, s, d) => acc + s * rowMajor[d]!, 0);
    const expr = usesIndex && base > 0 ? spec.expr.replace(/\bi\b/g, `(i + ${base}u)`) : spec.expr;
    launchMap({ ...spec, expr, out: c.views[0]!, inputs: c.views.slice(1) }, seed);
  }
}
