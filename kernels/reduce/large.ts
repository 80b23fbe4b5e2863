// Reductions whose input (or output) is larger than one storage binding (kernels/large.ts). The
// view is split along its widest dim (the largest stride × extent, so that each block's window
// shrinks fastest), recursively until a block's input window and output fit a binding:
// - a kept dim: each block reduces into a scratch result, copied into its slice of dst;
// - a reduced dim: each block reduces into one row of a partials buffer [blocks, outputs], and a
//   last reduction over the blocks (in block order: deterministic) gives dst, scaled once.
import { DTYPE_BYTES, type DType } from '../../runtime/dtype';
import { contiguousStrides, numelOf } from '../../runtime/shape';
import { rt } from '../define-kernel';
import { launchMap } from '../elementwise/map';
import { bindingLimit, windowBytesBound, windowed } from '../large';

/** What reduce.ts passes in (this file does not import it: no cycle). */
export interface ReduceCore {
  /** launchReduce itself. */
  launch(op: string, src: GPUBuffer, srcOffset: number, inType: DType, kept: D, reduced: D, dst: GPUBuffer, outType: DType, scale: number): void;
  partialTypeOf(inType: DType): DType;
}

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** launchReduce's contract (dst dense over the kept dims from element 0), for big operands; `k`
 *  and `r` are the coalesced kept and reduced dims. */
export function launchReduceSplit(core: ReduceCore, op: string, src: GPUBuffer, srcOffset: number, inType: DType, k: D, r: D, dst: GPUBuffer, outType: DType, scale: number): void {
  split(core, op, { buffer: src, offset: srcOffset, dtype: inType }, k, r, { buffer: dst, offset: 0, shape: k.shape, strides: contiguousStrides(k.shape) }, outType, scale);
}

interface Src {
  buffer: GPUBuffer;
  offset: number;
  dtype: DType;
}
interface Dst {
  buffer: GPUBuffer;
  offset: number;
  shape: readonly number[];
  strides: readonly number[];
}
export type D = { shape: number[]; strides: number[] };

function split(core: ReduceCore, op: string, src: Src, k: D, r: D, dst: Dst, outType: DType, scale: number): void {
  const limit = bindingLimit();
  const inBytes = DTYPE_BYTES[src.dtype];
  const allShape = [...k.shape, ...r.shape];
  const allStrides = [...k.strides, ...r.strides];
  const nOut = numelOf(k.shape);
  const fits = (shape: number[]) => windowBytesBound(shape, allStrides, inBytes) <= limit && numelOf(shape.slice(0, k.shape.length)) * 4 + 512 <= limit;
  if (fits(allShape)) {
    // Reduce into a scratch result of its own (dst may be a slice of a larger output).
    const w = windowed({ buffer: src.buffer, offset: src.offset, dtype: src.dtype, shape: allShape, strides: allStrides });
    const out = rt().pool.acquire(Math.max(nOut, 1) * DTYPE_BYTES[outType], USAGE(), 'reduce.split.out');
    core.launch(op, w.buffer, w.offset, src.dtype, k, r, out, outType, scale);
    launchMap({ name: 'copy', expr: 'a', inputs: [{ buffer: out, dtype: outType, shape: dst.shape, strides: contiguousStrides(dst.shape), offset: 0 }], out: { ...dst, dtype: outType } });
    rt().pool.release(out);
    return;
  }
  // The widest dim.
  let d = 0;
  for (let i = 1; i < allShape.length; i++) {
    if ((allShape[i]! - 1) * Math.abs(allStrides[i]!) > (allShape[d]! - 1) * Math.abs(allStrides[d]!)) d = i;
  }
  const n = allShape[d]!;
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const s = [...allShape];
    s[d] = mid;
    if (fits(s)) lo = mid;
    else hi = mid - 1;
  }
  const block = Math.max(lo, 1);
  const nk = k.shape.length;
  if (d < nk) {
    for (let i = 0; i < n; i += block) {
      const len = Math.min(block, n - i);
      const ks = [...k.shape];
      ks[d] = len;
      const dshape = [...dst.shape];
      dshape[d] = len;
      split(core, op, { ...src, offset: src.offset + i * k.strides[d]! }, { shape: ks, strides: k.strides }, r, { ...dst, shape: dshape, offset: dst.offset + i * dst.strides[d]! }, outType, scale);
    }
    return;
  }
  const rd = d - nk;
  const blocks = Math.ceil(n / block);
  const partialType = core.partialTypeOf(src.dtype);
  const partials = rt().pool.acquire(blocks * Math.max(nOut, 1) * DTYPE_BYTES[partialType], USAGE(), 'reduce.split.partials');
  for (let b = 0; b < blocks; b++) {
    const i = b * block;
    const rs = [...r.shape];
    rs[rd] = Math.min(block, n - i);
    const pdst = { buffer: partials, offset: b * nOut, shape: k.shape, strides: contiguousStrides(k.shape) };
    split(core, op, { ...src, offset: src.offset + i * r.strides[rd]! }, k, { shape: rs, strides: r.strides }, pdst, partialType, 1);
  }
  // Reduce over the blocks: kept = the outputs (dense), reduced = the block index.
  split(core, op, { buffer: partials, offset: 0, dtype: partialType }, { shape: k.shape, strides: contiguousStrides(k.shape) }, { shape: [blocks], strides: [nOut] }, dst, outType, scale);
  rt().pool.release(partials);
}
