// Shapes, strides and strided views: the pure helpers every layer above shares. A `View` is the
// form in which kernels take their operands (a GPU buffer seen through shape, element strides and
// an element offset); tensors in engine/ are views with storage management and autograd on top.
import type { DType } from './dtype';

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
