// Indexing along one dimension, forward and backward side by side:
//   gather(input, dim, index)          torch.gather      backward: scatter_add into zeros
//   indexSelect(input, dim, index)     torch.index_select backward: index_add into zeros
//   scatterAdd(input, dim, index, src) torch.scatter_add  backward: (g, gather(g))
//   indexAdd(input, dim, index, src)   torch.index_add    backward: (g, index_select(g))
// Index tensors are i32. Out-of-range indices (negative or >= size) are not errors (that would
// need a readback): gather/indexSelect yield 0 there, scatterAdd/indexAdd skip them. Every
// scatter-add is deterministic: each output element sums its contributions in ascending index
// position (see kernels/indexing/scatter.ts), so two runs agree bit for bit. With a 1-D index (indexAdd,
// indexSelect's backward) the contributions are found through per-target hit lists, so the cost
// is linear in the tensor sizes; gather's backward loops over the index fibre (out.numel × K).
import { record } from '../autograd';
import { normDim, type Tensor, empty, zeros } from '../tensor';
import { contiguousStrides, type View } from '../../runtime/shape';
import { launchMap } from '../../kernels/elementwise/map';
import { launchGather } from '../../kernels/indexing/gather';
import { launchIndexAdd, launchScatterAdd } from '../../kernels/indexing/scatter';

function checkIndex(op: string, index: Tensor): void {
  if (index.dtype !== 'i32') throw new Error(`${op}: index must be an i32 tensor, got ${index.dtype}`);
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((n, i) => n === b[i]);

/** A 1-D index viewed as a tensor of `shape` that varies only along `dim` (stride 0 elsewhere). */
function expandIndex(index: Tensor, dim: number, shape: readonly number[]): View {
  const strides = shape.map((_, d) => (d === dim ? (index.ndim === 0 ? 0 : index.strides[0]!) : 0));
  return { buffer: index.buffer, dtype: index.dtype, shape, strides, offset: index.offset };
}

function oneDimIndex(op: string, index: Tensor): number {
  checkIndex(op, index);
  if (index.ndim > 1) throw new Error(`${op}: index must be 1-D, got shape [${index.shape}]`);
  return index.ndim === 0 ? 1 : index.shape[0]!;
}

// ---- gather ----------------------------------------------------------------------------------

/** out[c] = input[c with c[dim] := index[c]]; out has index's shape (torch.gather). */
export function gather(input: Tensor, dim: number, index: Tensor): Tensor {
  checkIndex('gather', index);
  if (index.ndim !== input.ndim) throw new Error(`gather: index has ${index.ndim} dims, input has ${input.ndim}; they must match`);
  const d = normDim(dim, input.ndim);
  input.shape.forEach((n, k) => {
    if (k !== d && index.shape[k]! > n) throw new Error(`gather: index shape [${index.shape}] exceeds input shape [${input.shape}] at dim ${k} (only dim ${d} may differ)`);
  });
  const out = empty(index.shape, input.dtype);
  launchGather(input, d, index, out);
  return record(out, 'gather', [input], (g) => {
    const gi = empty(input.shape, g.dtype);
    launchScatterAdd(null, d, index, g, gi);
    return [gi];
  });
}

/** Slices of input along dim at the positions in the 1-D index (torch.index_select). */
export function indexSelect(input: Tensor, dim: number, index: Tensor): Tensor {
  const len = oneDimIndex('indexSelect', index);
  const d = normDim(dim, input.ndim);
  const shape = [...input.shape];
  shape[d] = len;
  const out = empty(shape, input.dtype);
  launchGather(input, d, expandIndex(index, d, shape), out);
  return record(out, 'indexSelect', [input], (g) => {
    const gi = empty(input.shape, g.dtype);
    launchIndexAdd(null, d, index, g, gi);
    return [gi];
  });
}

// ---- scatter-add -----------------------------------------------------------------------------

/** input with src[c] added at c with c[dim] := index[c], for every c of index (torch.scatter_add). */
export function scatterAdd(input: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  checkIndex('scatterAdd', index);
  if (index.ndim !== input.ndim || src.ndim !== input.ndim) {
    throw new Error(`scatterAdd: input, index and src must have the same number of dims, got [${input.shape}], [${index.shape}], [${src.shape}]`);
  }
  if (src.dtype !== input.dtype) throw new Error(`scatterAdd: src dtype ${src.dtype} differs from input dtype ${input.dtype}`);
  const d = normDim(dim, input.ndim);
  index.shape.forEach((n, k) => {
    if (n > src.shape[k]!) throw new Error(`scatterAdd: index shape [${index.shape}] exceeds src shape [${src.shape}] at dim ${k}`);
    if (k !== d && n > input.shape[k]!) throw new Error(`scatterAdd: index shape [${index.shape}] exceeds input shape [${input.shape}] at dim ${k} (only dim ${d} may differ)`);
  });
  const out = empty(input.shape, input.dtype);
  launchScatterAdd(input, d, index, src, out);
  return record(out, 'scatterAdd', [input, src], (g) => {
    let gs: Tensor | null = null;
    if (src.requiresGrad) {
      const gathered = empty(index.shape, g.dtype);
      launchGather(g, d, index, gathered);
      if (sameShape(index.shape, src.shape)) gs = gathered;
      else {
        // src positions outside index's extent received nothing: zero gradient there.
        gs = zeros(src.shape, g.dtype);
        const target = gs.viewAs(index.shape, contiguousStrides(src.shape), 0);
        launchMap({ name: 'copy', expr: 'a', inputs: [gathered], out: target });
        target.dispose();
        gathered.dispose();
      }
    }
    return [input.requiresGrad ? g : null, gs];
  });
}

/** input with src's slices added along dim at the positions in the 1-D index (torch.index_add). */
export function indexAdd(input: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const len = oneDimIndex('indexAdd', index);
  const d = normDim(dim, input.ndim);
  const want = [...input.shape];
  want[d] = len;
  if (!sameShape(src.shape, want)) throw new Error(`indexAdd: src must have shape [${want}] (input's with dim ${d} = index length), got [${src.shape}]`);
  if (src.dtype !== input.dtype) throw new Error(`indexAdd: src dtype ${src.dtype} differs from input dtype ${input.dtype}`);
  const out = empty(input.shape, input.dtype);
  launchIndexAdd(input, d, index, src, out);
  return record(out, 'indexAdd', [input, src], (g) => {
    let gs: Tensor | null = null;
    if (src.requiresGrad) {
      gs = empty(src.shape, g.dtype);
      launchGather(g, d, expandIndex(index, d, src.shape), gs);
    }
    return [input.requiresGrad ? g : null, gs];
  });
}
