// The matmul problem: C[b] = epilogue(A[b] · B[b]) for batched, broadcast, strided operands, both
// f32 or both f16 (f16 storage).
//
// Operands are views: A is [...batchA, M, K], B is [...batchB, K, N]; batch dims broadcast to the
// output's batch shape (stride 0 where an operand is broadcast). Inside the last two dims a view
// must be row-major (unit stride along the last dim) or column-major (unit stride along the
// second-to-last), so a transposed operand is read through its strides, never copied
// (`matrixLayout`; the op layer makes other layouts contiguous first). The output is a dense
// [...batch, M, N] buffer region. Epilogue: optional bias over N, then optional ReLU.
import { numelOf, type View } from '../../runtime/shape';

export type Activation = 'none' | 'relu';
export type Layout = 'row' | 'col';

/** How a matrix (the last two dims of a view) is laid out: element (i, j) at off + i·ld + j (row)
 *  or off + i + j·ld (col). null when neither (then the caller must make it contiguous). */
export interface MatrixLayout {
  layout: Layout;
  ld: number;
}

export function matrixLayout(v: { shape: readonly number[]; strides: readonly number[] }): MatrixLayout | null {
  const n = v.shape.length;
  const rows = v.shape[n - 2]!;
  const cols = v.shape[n - 1]!;
  const sr = v.strides[n - 2]!;
  const sc = v.strides[n - 1]!;
  // Size-1 dims have meaningless strides; ld of a single row/column is never multiplied by a
  // non-zero index, so report 0 (which also keeps vec4 alignment checks simple).
  if (cols === 1 || sc === 1) return { layout: 'row', ld: rows === 1 ? 0 : sr };
  if (rows === 1 || sr === 1) return { layout: 'col', ld: cols === 1 ? 0 : sc };
  return null;
}

export interface MatmulArgs {
  a: View;
  b: View;
  /** Dense output region of numel batch·M·N starting at out.offset. */
  out: View;
  bias?: View;
  act?: Activation;
}

export const MAX_BATCH_RANK = 4;

export interface Problem {
  M: number;
  N: number;
  K: number;
  batchShape: number[];
  batchStridesA: number[];
  batchStridesB: number[];
  nBatch: number;
  la: MatrixLayout;
  lb: MatrixLayout;
}

/** Broadcast batch dims, merge the mergeable ones, and check shapes. */
export function analyse(a: View, b: View): Problem {
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`matmul kernel: operands need >= 2 dims, got [${a.shape}] and [${b.shape}]`);
  if ((a.dtype !== 'f32' && a.dtype !== 'f16') || a.dtype !== b.dtype) throw new Error(`matmul: operands must be both f32 or both f16, got ${a.dtype} and ${b.dtype}`);
  const M = a.shape[a.shape.length - 2]!;
  const K = a.shape[a.shape.length - 1]!;
  const Kb = b.shape[b.shape.length - 2]!;
  const N = b.shape[b.shape.length - 1]!;
  if (K !== Kb) throw new Error(`matmul: inner dimensions differ: [${a.shape}] · [${b.shape}] (${K} vs ${Kb})`);
  const la = matrixLayout(a);
  const lb = matrixLayout(b);
  if (!la || !lb) throw new Error(`matmul kernel: operand matrices must be row- or column-major (strides [${a.strides}] / [${b.strides}])`);
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const shape: number[] = [];
  const sa: number[] = [];
  const sb: number[] = [];
  for (let i = 0; i < rank; i++) {
    const ia = i - (rank - ba.length);
    const ib = i - (rank - bb.length);
    const na = ia >= 0 ? ba[ia]! : 1;
    const nb = ib >= 0 ? bb[ib]! : 1;
    if (na !== nb && na !== 1 && nb !== 1) throw new Error(`matmul: batch dims [${ba}] and [${bb}] cannot be broadcast together`);
    const n = na === 1 ? nb : na;
    if (n === 1) continue; // size-1 batch dims contribute nothing
    shape.push(n);
    sa.push(na === 1 ? 0 : a.strides[ia]!);
    sb.push(nb === 1 ? 0 : b.strides[ib]!);
  }
  // Merge adjacent batch dims when both operands' strides allow (keeps the rank within 4).
  for (let i = shape.length - 2; i >= 0; i--) {
    if (sa[i] === sa[i + 1]! * shape[i + 1]! && sb[i] === sb[i + 1]! * shape[i + 1]!) {
      shape[i] = shape[i]! * shape[i + 1]!;
      sa[i] = sa[i + 1]!;
      sb[i] = sb[i + 1]!;
      shape.splice(i + 1, 1);
      sa.splice(i + 1, 1);
      sb.splice(i + 1, 1);
    }
  }
  if (shape.length > MAX_BATCH_RANK) throw new Error(`matmul: at most ${MAX_BATCH_RANK} non-mergeable batch dims, got [${shape}]`);
  return { M, N, K, batchShape: shape, batchStridesA: sa, batchStridesB: sb, nBatch: numelOf(shape), la, lb };
}
