// Joining and splitting along a dim. cat/stack write each input into a narrowed view of the output
// with the strided copy kernel (inputs may be any views); their backward hands each input the
// matching slice of the gradient (a view, no copy). split/chunk return narrowed views, whose
// backward is the slice backward of engine/ops/view.ts.
import { record } from '../autograd';
import { empty, normDim, type Tensor } from '../tensor';
import { launchMap } from '../../kernels/elementwise/map';
import { isFloat } from '../../runtime/dtype';
import { narrow } from './view';

/** A raw (no autograd) view of `t` restricted to [start, start + length) along `d`. */
function narrowRaw(t: Tensor, d: number, start: number, length: number): Tensor {
  const shape = [...t.shape];
  shape[d] = length;
  return t.viewAs(shape, t.strides, t.offset + start * t.strides[d]!);
}

/** The dtype of a join: the inputs' own, or f32 where f16 and f32 inputs mix (PyTorch promotes). */
function joinedType(tensors: readonly Tensor[]): Tensor['dtype'] {
  const first = tensors[0]!.dtype;
  return tensors.every((t) => t.dtype === first) ? first : 'f32';
}

/** Concatenate along `dim`: all inputs share rank and every other dim, and a dtype (f16 and f32
 *  mix into f32). */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('cat: needs at least one tensor');
  const first = tensors[0]!;
  if (first.ndim === 0) throw new Error('cat: zero-dimensional tensors cannot be concatenated (use stack)');
  const d = normDim(dim, first.ndim);
  tensors.forEach((t, k) => {
    if (t.dtype !== first.dtype && !(isFloat(t.dtype) && isFloat(first.dtype))) throw new Error(`cat: tensor ${k} has dtype ${t.dtype}, expected ${first.dtype} like tensor 0`);
    if (t.ndim !== first.ndim || t.shape.some((n, i) => i !== d && n !== first.shape[i])) {
      throw new Error(`cat: tensor ${k} has shape [${t.shape}], expected [${first.shape.map((n, i) => (i === d ? '*' : n))}] (all dims but ${d} equal)`);
    }
  });
  const shape = [...first.shape];
  shape[d] = tensors.reduce((s, t) => s + t.shape[d]!, 0);
  const out = empty(shape, joinedType(tensors));
  const starts: number[] = [];
  let at = 0;
  for (const t of tensors) {
    starts.push(at);
    const len = t.shape[d]!;
    if (len > 0) {
      const target = narrowRaw(out, d, at, len);
      launchMap({ name: 'copy', expr: 'a', inputs: [t], out: target });
      target.dispose();
    }
    at += len;
  }
  return record(out, 'cat', tensors, (g) => tensors.map((t, k) => (t.requiresGrad ? narrowRaw(g, d, starts[k]!, t.shape[d]!) : null)));
}

/** Alias of cat (torch.concat). */
export const concat = cat;

/** Stack equal-shaped tensors along a new dim `dim` (0..ndim). */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('stack: needs at least one tensor');
  const first = tensors[0]!;
  const d = dim < 0 ? dim + first.ndim + 1 : dim;
  if (d < 0 || d > first.ndim) throw new Error(`stack: dim ${dim} out of range for stacking ${first.ndim}-d tensors`);
  tensors.forEach((t, k) => {
    if (t.dtype !== first.dtype && !(isFloat(t.dtype) && isFloat(first.dtype))) throw new Error(`stack: tensor ${k} has dtype ${t.dtype}, expected ${first.dtype} like tensor 0`);
    if (t.ndim !== first.ndim || t.shape.some((n, i) => n !== first.shape[i])) {
      throw new Error(`stack: tensor ${k} has shape [${t.shape}], expected [${first.shape}] like tensor 0`);
    }
  });
  const shape = [...first.shape];
  shape.splice(d, 0, tensors.length);
  const out = empty(shape, joinedType(tensors));
  // The slot of tensor k: index k along d, that dim removed.
  const slot = (base: Tensor, k: number) => {
    const strides = [...base.strides];
    const step = strides.splice(d, 1)[0]!;
    return base.viewAs(first.shape, strides, base.offset + k * step);
  };
  tensors.forEach((t, k) => {
    const target = slot(out, k);
    launchMap({ name: 'copy', expr: 'a', inputs: [t], out: target });
    target.dispose();
  });
  return record(out, 'stack', tensors, (g) => tensors.map((t, k) => (t.requiresGrad ? slot(g, k) : null)));
}

/**
 * Split along `dim` into pieces of `size` elements (the last may be smaller), or into pieces of
 * the given sizes (which must add up to the dim). Returns views.
 */
export function split(t: Tensor, sizes: number | readonly number[], dim = 0): Tensor[] {
  const d = normDim(dim, t.ndim);
  const n = t.shape[d]!;
  let lengths: number[];
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes <= 0) throw new Error(`split: size must be a positive integer, got ${sizes}`);
    lengths = [];
    for (let at = 0; at < n; at += sizes) lengths.push(Math.min(sizes, n - at));
    if (n === 0) lengths.push(0);
  } else {
    lengths = [...sizes];
    const total = lengths.reduce((a, b) => a + b, 0);
    if (lengths.some((l) => !Number.isInteger(l) || l < 0) || total !== n) {
      throw new Error(`split: sizes [${lengths}] must be non-negative integers adding up to ${n} (dim ${d} of [${t.shape}])`);
    }
  }
  const out: Tensor[] = [];
  let at = 0;
  for (const len of lengths) {
    out.push(narrow(t, d, at, len));
    at += len;
  }
  return out;
}

/** Split into `chunks` pieces of ceil(n / chunks) (torch.chunk: possibly fewer pieces). */
export function chunk(t: Tensor, chunks: number, dim = 0): Tensor[] {
  if (!Number.isInteger(chunks) || chunks <= 0) throw new Error(`chunk: chunks must be a positive integer, got ${chunks}`);
  const d = normDim(dim, t.ndim);
  const n = t.shape[d]!;
  return split(t, Math.max(1, Math.ceil(n / chunks)), d);
}
