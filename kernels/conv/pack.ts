// Operand packing for the v2 conv GEMMs: the GEMM "row" operand (output channels for forward and
// wgrad, input channels for dgrad) is rearranged so that the rows one invocation owns are adjacent
// and vec4-aligned, padded with zeros to a whole number of row tiles. On lavapipe every storage load
// is scalarised per lane at ~20 ns regardless of width (perf-anchors §5), so one vec4 load of four
// rows replaces four scalar loads. Packing is one cheap pass over the (small) weight or over dy.
//   weightRows:  W[g·Og + o, c, tap]  →  P[g, tap, k, r]   (fwd: r = o, k = c; dgrad: r = c, k = o)
//   dyRows:      dy[n, g·Og + o, pix] →  P[n, pix, g, r]   (wgrad: r = o)
// Padding rows (r ≥ Og or ≥ Cg) are written as 0, so the GEMM needs no row bounds checks.
import { type KernelDef, rt, WGSL_LINEAR_WORKGROUP } from '../../runtime/runtime';
import { type ConvGeometry } from './geometry';

const WG = 64;

function packDef(kind: 'fwd' | 'dgrad' | 'dy'): KernelDef {
  // All three are P[outer, k, r] with r fastest; src index computed per kind.
  const src =
    kind === 'fwd'
      ? // outer = g·KHW + tap, k = c, r = o
        `let g = outer / p.khw; let tap = outer % p.khw;
  let ok = r < p.og;
  let s = (u32(g) * p.og + min(r, p.og - 1u)) * p.cg * p.khw + k * p.khw + tap;`
      : kind === 'dgrad'
        ? // outer = g·KHW + tap, k = o, r = c
          `let g = outer / p.khw; let tap = outer % p.khw;
  let ok = r < p.cg;
  let s = (u32(g) * p.og + k) * p.cg * p.khw + min(r, p.cg - 1u) * p.khw + tap;`
        : // outer = n·OHW + pix, k = g, r = o ; p.khw holds OHW, p.cg holds G
          `let n = outer / p.khw; let pix = outer % p.khw;
  let ok = r < p.og;
  let s = (n * p.cg * p.og + k * p.og + min(r, p.og - 1u)) * p.khw + pix;`;
  return {
    key: `conv.pack.${kind}`,
    bindings: ['read', 'rw'],
    uniform: true,
    code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
struct Q { total: u32, rp: u32, kn: u32, khw: u32, og: u32, cg: u32, src_off: u32, _p: u32 }
@group(0) @binding(2) var<uniform> p: Q;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.total) { return; }
  let r = i % p.rp;
  let rest = i / p.rp;
  let k = rest % p.kn;
  let outer = rest / p.kn;
  ${src}
  dst[i] = select(0.0, src[p.src_off + s], ok);
}`,
  };
}

const defs = { fwd: packDef('fwd'), dgrad: packDef('dgrad'), dy: packDef('dy') };

/** Rows padded to whole tiles of `tm` rows. */
export const paddedRows = (rows: number, tm: number) => Math.ceil(rows / tm) * tm;

function run(def: KernelDef, src: GPUBuffer, dst: GPUBuffer, q: number[]): void {
  const total = q[0]!;
  const groups = Math.ceil(total / WG);
  const gx = Math.min(groups, 65535);
  rt().dispatch(def, [src, dst], new Uint32Array(q), [gx, Math.ceil(groups / gx)]);
}

/** Pack W for the forward GEMM into a pooled buffer P[g, tap, c, o (padded to rp)]; caller releases. */
export function packWeightForward(g: ConvGeometry, w: GPUBuffer, wOff: number, rp: number): GPUBuffer {
  const khw = g.KH * g.KW;
  const cg = g.C / g.groups;
  const og = g.O / g.groups;
  const total = g.groups * khw * cg * rp;
  const dst = rt().pool.acquire(total * 4, GPUBufferUsage.STORAGE, 'conv.pack.w.fwd');
  run(defs.fwd, w, dst, [total, rp, cg, khw, og, cg, wOff, 0]);
  return dst;
}

/** Pack W for the dgrad GEMM: P[g, tap, o, c (padded to rp)]; caller releases. */
export function packWeightDgrad(g: ConvGeometry, w: GPUBuffer, wOff: number, rp: number): GPUBuffer {
  const khw = g.KH * g.KW;
  const cg = g.C / g.groups;
  const og = g.O / g.groups;
  const total = g.groups * khw * og * rp;
  const dst = rt().pool.acquire(total * 4, GPUBufferUsage.STORAGE, 'conv.pack.w.dgrad');
  run(defs.dgrad, w, dst, [total, rp, og, khw, og, cg, wOff, 0]);
  return dst;
}

/** Pack dy for the wgrad GEMM: P[n, pix, g, o (padded to rp)]; caller releases. */
export function packDyRows(g: ConvGeometry, dy: GPUBuffer, dyOff: number, rp: number): GPUBuffer {
  const ohw = g.OH * g.OW;
  const og = g.O / g.groups;
  const total = g.N * ohw * g.groups * rp;
  const dst = rt().pool.acquire(total * 4, GPUBufferUsage.STORAGE, 'conv.pack.dy');
  run(defs.dy, dy, dst, [total, rp, g.groups, ohw, og, g.groups, dyOff, 0]);
  return dst;
}
