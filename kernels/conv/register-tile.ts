// WGSL text for the register tile shared by the implicit-GEMM conv kernels (scalar-gemm,
// packed-gemm; forward, dgrad, wgrad). Each invocation owns TM rows × 4 columns of the GEMM output
// in TM vec4f accumulators (acc0..acc{TM-1}); per reduction step it loads TM values of A and 4
// values of B and does TM vec4 FMAs. All per-row and per-column code is unrolled here in
// TypeScript, because WGSL arrays indexed in loops spill on lavapipe. The workgroup is a row of WG
// invocations along the columns.
import { WGSL_LINEAR_WORKGROUP } from '../define-kernel';

export const TN = 4;

/** Variant of the register-tiled GEMM kernels: TM rows per invocation, workgroup width, and the
 *  1×1 stride-1 unpadded specialisation. */
export interface GemmTileVariant {
  tm: number;
  wg: number;
  pointwise: boolean;
}
/** Forward GEMMs also fuse the bias and ReLU. */
export interface ForwardTileVariant extends GemmTileVariant {
  hasBias: boolean;
  relu: boolean;
}
export const COLS = [0, 1, 2, 3] as const;

export const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Repeat a template for each column j (the `$` in `tpl` becomes the column index). */
export const perCol = (tpl: string) => COLS.map((j) => tpl.replaceAll('$', String(j))).join('\n  ');
/** Repeat a template for each row i < tm (the `@` in `tpl` becomes the row index). */
export const perRow = (tm: number, tpl: string) => range(tm).map((i) => tpl.replaceAll('@', String(i))).join('\n  ');

/**
 * Kernel entry: decodes the folded linear workgroup index into (col_tile, row_tile, z) where the
 * uniform's e0 = column tiles and e1 = row tiles, and sets `c0` (first column of this invocation)
 * and `m0` (first row). `z` is the group index (times split count for wgrad).
 */
export function gemmEntry(wg: number, tm: number, zLimit: string): string {
  return `${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = i32(linear_workgroup(wid, nwg));
  let col_tile = t % p.e0;
  let rest = t / p.e0;
  let row_tile = rest % p.e1;
  let z = rest / p.e1;
  if (z >= ${zLimit}) { return; }
  let c0 = (col_tile * ${wg} + i32(lid)) * ${TN};
  let m0 = row_tile * ${tm};`;
}

export const accDecl = (tm: number) => perRow(tm, 'var acc@ = vec4f(0.0);');

/** acc_i += a_i · b for every row, where `aExpr` (with `@` for the row) is the A element. */
export const fmaRows = (tm: number, aExpr: string, b = 'b') => perRow(tm, `acc@ = fma(vec4f(${aExpr}), ${b}, acc@);`);

/** B as a vec4 from four masked loads: `addr` and `ok` are templates with `$` for the column. */
export const maskedVec4 = (buf: string, addr: string, ok: string) =>
  `vec4f(${COLS.map((j) => `select(0.0, ${buf}[select(0, ${addr.replaceAll('$', String(j))}, ${ok.replaceAll('$', String(j))})], ${ok.replaceAll('$', String(j))})`).join(', ')})`;

export const plainVec4 = (buf: string, addr: string) => `vec4f(${COLS.map((j) => `${buf}[${addr.replaceAll('$', String(j))}]`).join(', ')})`;

export const COMPONENT = ['x', 'y', 'z', 'w'] as const;

/** Row operand as vec4s: acc_i += a{i/4}.{i%4} · b, for A loaded as tm/4 vec4 (packed rows). */
export const fmaRowsVec4 = (tm: number, b = 'b') => range(tm).map((i) => `acc${i} = fma(vec4f(a${i >> 2}.${COMPONENT[i & 3]}), ${b}, acc${i});`).join('\n  ');

/** `let a0 = buf[base + 0]; …` for the tm/4 packed vec4 row values. */
export const loadRowsVec4 = (tm: number, buf: string, base: string) => range(tm / 4).map((v) => `let a${v} = ${buf}[${base} + ${v}];`).join('\n  ');
