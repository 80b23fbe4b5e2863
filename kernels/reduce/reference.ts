// Float64 reference of the reductions, pure TypeScript: reduce a host tensor over a set of axes
// with any function of each output cell's values. The reduce, arg-reduce and var/std tests
// (test/kernels/reduce/) check the kernels against it.
import { numelOf } from '../../runtime/shape';

/** A float64 tensor on the host: row-major data and its shape. */
export interface HostTensor {
  data: Float64Array;
  shape: number[];
}

function unravelIndex(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

function ravelIndex(idx: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d]! + idx[d]!;
  return i;
}

/** Reduce `axes` with `f` over the values of each output cell (keepdim shape returned too). */
export function reduceHost(h: HostTensor, axes: readonly number[], f: (vals: number[]) => number, keepdim = false): HostTensor {
  const keptShape = h.shape.map((n, d) => (axes.includes(d) ? 1 : n));
  const groups: number[][] = Array.from({ length: numelOf(keptShape) }, () => []);
  for (let i = 0; i < h.data.length; i++) {
    const idx = unravelIndex(i, h.shape).map((v, d) => (axes.includes(d) ? 0 : v));
    groups[ravelIndex(idx, keptShape)]!.push(h.data[i]!);
  }
  const data = Float64Array.from(groups.map(f));
  return { data, shape: keepdim ? keptShape : h.shape.filter((_, d) => !axes.includes(d)) };
}
