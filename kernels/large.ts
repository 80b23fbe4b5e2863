// Tensors larger than one storage binding. A buffer may hold up to maxBufferSize bytes (4 GiB on
// most adapters), but one storage binding only maxStorageBufferBindingSize (128 MiB by default and
// on lavapipe). A launcher whose operand lies in a buffer over that limit splits its work into
// sub-problems whose operands each fit a binding *window*: a byte range of the buffer starting at
// a multiple of minStorageBufferOffsetAlignment (256), bound in place of the buffer through
// `rt().bindingWindow`, with the element offsets rebased to the window's start. Nothing is copied;
// when every operand fits (the common case) launchers take their usual path after one size check.
//
//   windowed(view)        the view rebound to a window over exactly the elements it touches
//   windowRange(...)      the same for a contiguous range (conv's operands)
//   chunkForBinding(...)  split a shape, with every operand broadcast to it, into blocks of
//                         leading dims whose operands each fit a window (optionally with some
//                         operands whole along one dim: a scatter's or gather's fibres)
//   rowBlocks(...)        blocks of independent rows (softmax, arg-reductions, cumsum, pasting)
//   viewWith(view, ...)   a plain copy of a view (tensors' fields are getters, lost by spread)
//
// `rt().setBindingLimitForTests(bytes)` lowers the limit so that tests run the split paths on
// small tensors (the runtime then refuses any binding over the lowered limit).
import { DTYPE_BYTES } from '../runtime/dtype';
import type { View } from '../runtime/shape';
import { rt } from './define-kernel';

/** Bytes of alignment slack plus tail rounding a window may add to the elements it covers. */
const SLACK = 256 + 16;

/** The current storage binding limit in bytes (the device's, or the one tests set). */
export function bindingLimit(): number {
  return rt().bindingLimit;
}

/** True when some buffer (or window handle) is larger than one storage binding: the launcher must
 *  split. Costs a few comparisons, so launchers call it on every launch. */
export function overBindingLimit(...buffers: (GPUBuffer | null | undefined)[]): boolean {
  const limit = rt().bindingLimit;
  for (const b of buffers) if (b && b.size > limit) return true;
  return false;
}

/** A plain copy of a view (tensors keep their fields behind getters, which object spread drops),
 *  with some fields replaced. */
export function viewWith(v: View, changes: Partial<View> = {}): View {
  return { buffer: v.buffer, dtype: v.dtype, shape: v.shape, strides: v.strides, offset: v.offset, ...changes };
}

/** Lowest and highest element index (relative to the buffer) a view touches. */
export function viewSpan(v: { shape: readonly number[]; strides: readonly number[]; offset: number }): { lo: number; hi: number } {
  let lo = v.offset;
  let hi = v.offset;
  for (let d = 0; d < v.shape.length; d++) {
    const ext = (v.shape[d]! - 1) * v.strides[d]!;
    if (v.shape[d] === 0) return { lo: v.offset, hi: v.offset };
    if (ext < 0) lo += ext;
    else hi += ext;
  }
  return { lo, hi };
}

/** Upper bound of the window bytes a view of this shape and strides needs, wherever it starts. */
export function windowBytesBound(shape: readonly number[], strides: readonly number[], dtypeBytes: number): number {
  const { lo, hi } = viewSpan({ shape, strides, offset: 0 });
  return (hi - lo + 1) * dtypeBytes + SLACK;
}

/** A window of `buffer` covering elements [lo, hi] (elements of `bytes` bytes): the handle and the
 *  element index of the window's start. */
function windowOver(buffer: GPUBuffer, lo: number, hi: number, bytes: number): { buffer: GPUBuffer; base: number } {
  const runtime = rt();
  const align = runtime.device.limits.minStorageBufferOffsetAlignment;
  const start = Math.floor((lo * bytes) / align) * align;
  const end = Math.min(Math.ceil(((hi + 1) * bytes) / 16) * 16, buffer.size);
  const size = end - start;
  if (size > runtime.bindingLimit) {
    throw new Error(`a ${size}-byte window is over the ${runtime.bindingLimit}-byte storage binding limit (split the work further)`);
  }
  return { buffer: runtime.bindingWindow(buffer, start, size), base: start / bytes };
}

/** The view rebound to a window over the elements it touches (offset rebased to the window). */
export function windowed<T extends View>(v: T): View {
  const bytes = DTYPE_BYTES[v.dtype];
  const { lo, hi } = viewSpan(v);
  const w = windowOver(v.buffer, lo, hi, bytes);
  return { buffer: w.buffer, dtype: v.dtype, shape: v.shape, strides: v.strides, offset: v.offset - w.base };
}

/** A window over the contiguous elements [offset, offset + count) of `buffer`, for launchers that
 *  take a buffer and an element offset: the handle and the offset within it. */
export function windowRange(buffer: GPUBuffer, offset: number, count: number, dtypeBytes = 4): { buffer: GPUBuffer; offset: number } {
  const w = windowOver(buffer, offset, offset + Math.max(count, 1) - 1, dtypeBytes);
  return { buffer: w.buffer, offset: offset - w.base };
}

/** The largest count of items of `itemBytes` bytes each (plus window slack) that fits one binding. */
export function itemsPerBinding(itemBytes: number): number {
  return Math.floor((rt().bindingLimit - SLACK) / itemBytes);
}

/**
 * Blocks [start, start + count) of `rows` independent rows for a launcher whose operands are
 * rows of at most `rowBytes` bytes each (contiguous, or one row per output element): every
 * operand's block fits one binding window. Throws naming `op` when a single row does not fit.
 */
export function rowBlocks(op: string, rows: number, rowBytes: number): { start: number; count: number }[] {
  const per = itemsPerBinding(Math.max(rowBytes, 1));
  if (per < 1) throw new Error(`${op}: one row of ${rowBytes} bytes is over the ${bindingLimit()}-byte storage binding limit (rows are not split)`);
  const out: { start: number; count: number }[] = [];
  for (let start = 0; start < rows; start += per) out.push({ start, count: Math.min(per, rows - start) });
  return out;
}

export interface BindingChunk {
  /** Index of the chunk's first element along each dim. */
  start: number[];
  shape: number[];
  /** The operands restricted to the chunk, each rebound to its own window. */
  views: View[];
}

/**
 * Split `shape` into blocks whose operands each fit one binding window, for work that is
 * independent per element of the leading dims (elementwise ops, copies). Every operand must have
 * `shape`'s rank (broadcast operands with stride 0). Blocks run along dim 0 as long as a block of
 * at least one index fits; otherwise each index of dim 0 is split along dim 1, and so on. The
 * blocks cover `shape` in row-major order. `whole` (optional): a dim along which the flagged
 * operands are always taken whole, at their own extent (`v.shape[dim]`, which may differ from
 * `shape[dim]`): the fibres a scatter's output element reads.
 */
export function chunkForBinding(shape: readonly number[], operands: readonly View[], whole?: { dim: number; operands: readonly boolean[] }): BindingChunk[] {
  const limit = bindingLimit();
  const out: BindingChunk[] = [];
  const isWhole = (j: number, d: number) => !!whole && d === whole.dim && !!whole.operands[j];
  const shapeOf = (j: number, s: readonly number[]) => s.map((n, d) => (isWhole(j, d) ? operands[j]!.shape[d]! : n));
  const fits = (s: readonly number[]) => operands.every((v, j) => windowBytesBound(shapeOf(j, s), v.strides, DTYPE_BYTES[v.dtype]) <= limit);
  const rec = (d: number, start: number[], cur: number[], offs: number[]): void => {
    if (fits(cur)) {
      out.push({
        start: [...start],
        shape: [...cur],
        views: operands.map((v, j) => windowed({ buffer: v.buffer, dtype: v.dtype, shape: shapeOf(j, cur), strides: v.strides, offset: offs[j]! })),
      });
      return;
    }
    if (d >= shape.length) throw new Error(`an element of [${shape}] does not fit a ${limit}-byte storage binding`);
    const n = shape[d]!;
    // The largest block along d that fits (windowBytesBound grows with the block length).
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      const s = [...cur];
      s[d] = mid;
      if (fits(s)) lo = mid;
      else hi = mid - 1;
    }
    const block = lo;
    for (let i = 0; i < n; i += Math.max(block, 1)) {
      const len = block > 0 ? Math.min(block, n - i) : 1;
      const s = [...cur];
      s[d] = len;
      const st = [...start];
      st[d] = i;
      const o = operands.map((v, j) => offs[j]! + (isWhole(j, d) ? 0 : i * v.strides[d]!));
      if (block > 0) rec(shape.length, st, s, o);
      else rec(d + 1, st, s, o);
    }
  };
  rec(0, shape.map(() => 0), [...shape], operands.map((v) => v.offset));
  return out;
}
