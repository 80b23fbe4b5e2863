// Operand packing for the packed-gemm kernels: the GEMM "row" operand (output channels for
// forward and wgrad, input channels for dgrad) is rearranged so that the rows one invocation owns
// are adjacent and vec4-aligned, padded with zeros to a whole number of row tiles. On lavapipe
// every storage load is scalarised per lane at about the same cost whatever its width, so one vec4
// load of four rows replaces four scalar loads. Packing is one cheap pass over the (small) weight
// or over dy. The row tile TM (packedGemmRows) is chosen here, as the packing pads to it.
//   weightRows:  W[g·Og + o, c, tap]  →  P[g, tap, k, r]   (fwd: r = o, k = c; dgrad: r = c, k = o)
//   dyRows:      dy[n, g·Og + o, pix] →  P[n, pix, g, r]   (wgrad: r = o)
// Padding rows (r ≥ Og or ≥ Cg) are written as 0, so the GEMM needs no row bounds checks.
import { defineKernel, read, rt, rw, WGSL_LINEAR_WORKGROUP } from '../../define-kernel';
import { type ConvGeometry } from '../geometry';

const WG = 64;

type PackKind = 'fwd' | 'dgrad' | 'dy';

function packCode(kind: PackKind): string {
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
  return /* wgsl */ `
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
}`;
}

const packKernel = defineKernel({
  name: 'conv.packed-gemm.pack',
  variants: { kind: ['fwd', 'dgrad', 'dy'] },
  bindings: { src: read('f32'), dst: rw('f32') },
  params: { total: 'u32', rp: 'u32', kn: 'u32', khw: 'u32', og: 'u32', cg: 'u32', src_off: 'u32' },
  code: ({ kind }) => packCode(kind),
});

let rowsOverride: number | undefined;
/** Force TM (4, 8 or 16) for tuning and tests. */
export function overridePackedGemmRows(tm: number | undefined): void {
  rowsOverride = tm;
}

/** Rows per invocation for a packed GEMM with `m` rows: a multiple of 4 (vec4-packed), at most 16. */
export function packedGemmRows(m: number): number {
  if (rowsOverride !== undefined) return rowsOverride;
  return m >= 16 ? 16 : m > 4 ? 8 : 4;
}

/** Rows padded to whole tiles of `tm` rows. */
export const paddedRows = (rows: number, tm: number) => Math.ceil(rows / tm) * tm;

function run(kind: PackKind, src: GPUBuffer, dst: GPUBuffer, q: { total: number; rp: number; kn: number; khw: number; og: number; cg: number; src_off: number }): void {
  const groups = Math.ceil(q.total / WG);
  const gx = Math.min(groups, 65535);
  packKernel.dispatch({ kind }, { src, dst }, q, [gx, Math.ceil(groups / gx)]);
}

/** Pack W for the forward GEMM into a pooled buffer P[g, tap, c, o (padded to rp)]; caller releases. */
export function packWeightForward(g: ConvGeometry, w: GPUBuffer, wOff: number, rp: number): GPUBuffer {
  const khw = g.KH * g.KW;
  const cg = g.C / g.groups;
  const og = g.O / g.groups;
  const total = g.groups * khw * cg * rp;
  const dst = rt().pool.acquire(total * 4, GPUBufferUsage.STORAGE, 'conv.packed-gemm.w.fwd');
  run('fwd', w, dst, { total, rp, kn: cg, khw, og, cg, src_off: wOff });
  return dst;
}

/** Pack W for the dgrad GEMM: P[g, tap, o, c (padded to rp)]; caller releases. */
export function packWeightDgrad(g: ConvGeometry, w: GPUBuffer, wOff: number, rp: number): GPUBuffer {
  const khw = g.KH * g.KW;
  const cg = g.C / g.groups;
  const og = g.O / g.groups;
  const total = g.groups * khw * og * rp;
  const dst = rt().pool.acquire(total * 4, GPUBufferUsage.STORAGE, 'conv.packed-gemm.w.dgrad');
  run('dgrad', w, dst, { total, rp, kn: og, khw, og, cg, src_off: wOff });
  return dst;
}

/** Pack dy for the wgrad GEMM: P[n, pix, g, o (padded to rp)]; caller releases. */
export function packDyRows(g: ConvGeometry, dy: GPUBuffer, dyOff: number, rp: number): GPUBuffer {
  const ohw = g.OH * g.OW;
  const og = g.O / g.groups;
  const total = g.N * ohw * g.groups * rp;
  const dst = rt().pool.acquire(total * 4, GPUBufferUsage.STORAGE, 'conv.packed-gemm.dy');
  run('dy', dy, dst, { total, rp, kn: g.groups, khw: ohw, og, cg: g.groups, src_off: dyOff });
  return dst;
}
