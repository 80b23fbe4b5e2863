// What the matmul kernels share: the uniform block (sizes, strides, offsets, batch broadcast), the
// storage bindings A, B, [bias], C, the WGSL helpers (batch offsets, scalar loads, the epilogue,
// the store of a ROWS×4 register block), and the launch context a kernel's dispatch receives.
import { type BufferArgs, type ParamArgs } from '../define-kernel';
import { type Activation, MAX_BATCH_RANK, type Problem } from './problem';
import { type View } from '../../runtime/shape';
import { withF16Storage } from '../f16-storage';

export const PARAMS = {
  M: 'u32', N: 'u32', K: 'u32', kChunk: 'u32',
  offA: 'u32', sAm: 'u32', sAk: 'u32', offB: 'u32',
  sBk: 'u32', sBn: 'u32', offC: 'u32', offBias: 'u32',
  splits: 'u32', batchRank: 'u32', nBatch: 'u32',
  bshape: ['u32', MAX_BATCH_RANK, 1], bsA: ['u32', MAX_BATCH_RANK], bsB: ['u32', MAX_BATCH_RANK],
} as const;

export const X = ['x', 'y', 'z', 'w'];

export const UNIFORMS = /* wgsl */ `
// Element offsets of batch b's A and B matrices (batch dims broadcast with stride 0).
fn batch_offsets(b: u32) -> vec2u {
  var rem = b;
  var oa = p.offA;
  var ob = p.offB;
  for (var d = i32(p.batchRank) - 1; d >= 0; d--) {
    let n = p_bshape(u32(d));
    let i = rem % n;
    rem = rem / n;
    oa += i * p_bsA(u32(d));
    ob += i * p_bsB(u32(d));
  }
  return vec2u(oa, ob);
}`;

export interface Epilogue {
  bias: boolean;
  act: Activation;
}

/** What the main kernels' bindings depend on: vec4 element types (absent: f32), f16 storage and
 *  the bias. */
interface MainBindingVariant extends Storage {
  bias: boolean;
  aVec?: boolean;
  bVec?: boolean;
  cVec?: boolean;
}
export const vecType = (vec: boolean | undefined) => (vec ? 'vec4f' : 'f32');
/** Element type of an operand binding: vec4 or scalar, f16 or f32. */
const elemType = (h: boolean | undefined, vec: boolean | undefined) => (h ? (vec ? 'vec4h' : 'f16') : vecType(vec));
/** Bindings A, B, [bias], C of the main kernels (the subgroup kernel's B is always packed vec4f
 *  panels, widened from f16 by the pack kernel). The bias is f32 in every variant. */
export const mainBindings = (packedB: boolean) =>
  ({
    A: { type: (v: MainBindingVariant) => elemType(v.h, v.aVec), access: 'read' },
    B: { type: (v: MainBindingVariant) => (packedB ? 'vec4f' : elemType(v.h, v.bVec)), access: 'read' },
    bias: { type: 'f32', access: 'read', when: (v: MainBindingVariant) => v.bias },
    C: { type: (v: MainBindingVariant) => elemType(v.hc, v.cVec), access: 'rw' },
  }) as const;

/** f16 storage of a kernel variant: `h` A and B are f16 arrays, `hc` C is (never the split-K
 *  workspace). Arithmetic and accumulation stay f32 (kernels/f16-storage.ts). */
export interface Storage {
  h?: boolean;
  hc?: boolean;
}

/** A kernel body over f32 arrays rewritten for the variant's f16 storage: loads of `reads` (when
 *  `h`) widened, stores to C (when `hc`) narrowed; unchanged for f32. `vecReads` are vec4h arrays
 *  (register-tiled's vec4 loads): `X[q]` becomes `vec4f(X[q])` and `X[q][c]` `f32(X[q][c])`. */
export function withStorage(code: string, s: Storage, reads: readonly string[] = ['A', 'B'], vecReads: readonly string[] = []): string {
  let out = code;
  if (s.h) for (const name of vecReads) out = widenVec4(out, name);
  const scalar = reads.filter((r) => !vecReads.includes(r));
  return withF16Storage(withF16Storage(out, !!s.h, scalar, []), !!s.hc, [], ['C']);
}

/** `name[q]` -> `vec4f(name[q])`, `name[q][c]` -> `f32(name[q][c])`. */
function widenVec4(code: string, name: string): string {
  const re = new RegExp(`\\b${name}\\[`, 'g');
  let res = '';
  let last = 0;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    let end = closingBracket(code, m.index + name.length);
    const component = code[end + 1] === '[';
    if (component) end = closingBracket(code, end + 1);
    res += `${code.slice(last, m.index)}${component ? 'f32' : 'vec4f'}(${code.slice(m.index, end + 1)})`;
    last = end + 1;
    re.lastIndex = end + 1;
  }
  return res + code.slice(last);
}

function closingBracket(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === '[') depth++;
    else if (code[i] === ']' && --depth === 0) return i;
  }
  throw new Error(`matmul f16 storage: unbalanced brackets after offset ${open}`);
}

/** Helpers over the bindings and uniforms: batch offsets, scalar loads, the epilogue. */
export function header(aType: string, bType: string, epi: Epilogue): string {
  const lines: string[] = [];
  lines.push(UNIFORMS);
  // Scalar element access whatever the binding's element type.
  lines.push(aType === 'vec4f' ? 'fn ldA(i: u32) -> f32 { return A[i >> 2u][i & 3u]; }' : 'fn ldA(i: u32) -> f32 { return A[i]; }');
  lines.push(bType === 'vec4f' ? 'fn ldB(i: u32) -> f32 { return B[i >> 2u][i & 3u]; }' : 'fn ldB(i: u32) -> f32 { return B[i]; }');
  const biasTerm = epi.bias ? ' + bias[p.offBias + n]' : '';
  const act = epi.act === 'relu' ? 'max(v, 0.0)' : 'v';
  lines.push(`fn epi(acc: f32, n: u32) -> f32 { let v = acc${biasTerm}; return ${act}; }`);
  return lines.join('\n');
}

/** Store a ROWS×4 block of vec4 accumulators acc0.. at rows m0+r, columns n0..n0+3. */
export function storeBlock(rows: number, cVec: boolean, split: boolean, indent: string): string {
  const out: string[] = [];
  // With split-K the partial sums go to the workspace raw; the reduce kernel applies the epilogue.
  const f = (v: string, n: string) => (split ? v : `epi(${v}, ${n})`);
  for (let r = 0; r < rows; r++) {
    if (cVec) {
      const v = `acc${r}`;
      const e = split ? v : `vec4f(${X.map((c, i) => f(`${v}.${c}`, `n0 + ${i}u`)).join(', ')})`;
      out.push(`${indent}if (m0 + ${r}u < p.M) { C[(cbase + (m0 + ${r}u) * p.N + n0) >> 2u] = ${e}; }`);
    } else {
      for (let c = 0; c < 4; c++) {
        out.push(`${indent}if (m0 + ${r}u < p.M && n0 + ${c}u < p.N) { C[cbase + (m0 + ${r}u) * p.N + n0 + ${c}u] = ${f(`acc${r}.${X[c]}`, `n0 + ${c}u`)}; }`);
      }
    }
  }
  return out.join('\n');
}

export const aligned4 = (...xs: number[]) => xs.every((x) => x % 4 === 0);

/** Everything a kernel's dispatch needs, prepared once by `launchMatmul`. */
export interface MatmulLaunch {
  pr: Problem;
  a: View;
  b: View;
  params: ParamArgs<typeof PARAMS>;
  /** A, B, the bias when the main kernel applies it, and C (the output or the split-K workspace). */
  buffers: BufferArgs<ReturnType<typeof mainBindings>>;
  /** The main kernel's epilogue (none with split-K: the reduce kernel applies it). */
  epi: Epilogue;
  /** Matrix strides in (row, col) form for the generic index formulas. */
  sAm: number;
  sAk: number;
  sBk: number;
  sBn: number;
  /** C may be written as vec4 (N and the output offset multiples of 4; f32 C only). */
  cVec: boolean;
  /** f16 storage: A and B f16 (`h`), C f16 (`hc`, false while C is the split-K workspace). An
   *  f16 C is stored as scalars (`cVec` false). */
  storage: Storage;
  split: boolean;
  /** Workgroups along z: batches × K splits. */
  z: number;
}
