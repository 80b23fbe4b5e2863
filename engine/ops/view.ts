// View ops: new shape/strides/offset over the same storage, no copy (reshape copies only when the
// strides make a view impossible, as torch.reshape does). Each backward sits next to its forward.
import { record } from '../autograd';
import { contiguousCopy, normDim, type Tensor, zeros } from '../tensor';
import { contiguousStrides, numelOf } from '../../runtime/shape';
import { launchMap } from '../../kernels/elementwise/map';

/** Strides for viewing `t` as `shape` without a copy, or null when impossible (torch's rule). */
function viewStrides(t: Tensor, shape: readonly number[]): number[] | null {
  if (t.isContiguous()) return contiguousStrides(shape);
  // Merge/split dims within runs of mutually contiguous old dims.
  const oldShape = t.shape.filter((n) => n !== 1);
  const oldStrides = t.strides.filter((_, i) => t.shape[i] !== 1);
  const newStrides = new Array<number>(shape.length).fill(0);
  let oi = 0;
  let ni = 0;
  while (ni < shape.length || oi < oldShape.length) {
    if (ni < shape.length && shape[ni] === 1) {
      newStrides[ni] = 1;
      ni++;
      continue;
    }
    if (oi >= oldShape.length || ni >= shape.length) return null;
    // take a chunk of old dims [oi, oe) and new dims [ni, ne) with equal products
    let op = oldShape[oi]!;
    let np = shape[ni]!;
    let oe = oi + 1;
    let ne = ni + 1;
    while (op !== np) {
      if (op < np) {
        if (oe >= oldShape.length) return null;
        op *= oldShape[oe++]!;
      } else {
        if (ne >= shape.length) return null;
        np *= shape[ne++]!;
      }
    }
    for (let k = oi; k < oe - 1; k++) if (oldStrides[k] !== oldStrides[k + 1]! * oldShape[k + 1]!) return null;
    let stride = oldStrides[oe - 1]!;
    for (let k = ne - 1; k >= ni; k--) {
      newStrides[k] = stride;
      stride *= shape[k]!;
    }
    oi = oe;
    ni = ne;
  }
  return newStrides;
}

function resolveShape(numel: number, shape: readonly number[]): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const rest = numelOf(out.filter((_, i) => i !== neg));
    if (rest === 0 || numel % rest) throw new Error(`cannot reshape ${numel} elements into [${shape}]`);
    out[neg] = numel / rest;
  }
  if (numelOf(out) !== numel) throw new Error(`cannot reshape ${numel} elements into [${shape}]`);
  return out;
}

export function reshape(t: Tensor, shape: readonly number[]): Tensor {
  const s = resolveShape(t.numel, shape);
  const strides = viewStrides(t, s);
  let out: Tensor;
  if (strides) out = t.viewAs(s, strides, t.offset);
  else {
    const c = contiguousCopy(t);
    out = c.viewAs(s, contiguousStrides(s), 0);
    c.dispose();
  }
  return record(out, 'reshape', [t], (g) => [reshape(g, t.shape)]);
}

export function flatten(t: Tensor, startDim = 0, endDim = -1): Tensor {
  if (t.ndim === 0) return reshape(t, [1]);
  const a = normDim(startDim, t.ndim);
  const b = normDim(endDim, t.ndim);
  const shape = [...t.shape.slice(0, a), numelOf(t.shape.slice(a, b + 1)), ...t.shape.slice(b + 1)];
  return reshape(t, shape);
}

export function permute(t: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== t.ndim) throw new Error(`permute: ${dims.length} dims given for a ${t.ndim}-d tensor`);
  const d = dims.map((x) => normDim(x, t.ndim));
  if (new Set(d).size !== d.length) throw new Error(`permute: repeated dim in [${dims}]`);
  const out = t.viewAs(d.map((i) => t.shape[i]!), d.map((i) => t.strides[i]!), t.offset);
  const inv = new Array<number>(d.length);
  d.forEach((src, dst) => (inv[src] = dst));
  return record(out, 'permute', [t], (g) => [permute(g, inv)]);
}

export function transpose(t: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const perm = t.shape.map((_, i) => i);
  const a = normDim(dim0, t.ndim);
  const b = normDim(dim1, t.ndim);
  [perm[a], perm[b]] = [perm[b]!, perm[a]!];
  return permute(t, perm);
}

/** Elements start, start+step, ... below end along `dim` (Python slice semantics, step > 0). */
export function slice(t: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  const d = normDim(dim, t.ndim);
  const n = t.shape[d]!;
  if (step <= 0) throw new Error('slice: step must be positive');
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const s = clampIdx(start);
  const e = clampIdx(end ?? n);
  const len = Math.max(0, Math.ceil((e - s) / step));
  const shape = [...t.shape];
  shape[d] = len;
  const strides = [...t.strides];
  strides[d] = t.strides[d]! * step;
  const out = t.viewAs(shape, strides, t.offset + s * t.strides[d]!);
  return record(out, 'slice', [t], (g) => {
    const gx = zeros(t.shape, g.dtype);
    const target = slice(gx, d, s, e, step);
    launchMap({ name: 'copy', expr: 'a', inputs: [g], out: target });
    target.dispose();
    return [gx];
  });
}

export function narrow(t: Tensor, dim: number, start: number, length: number): Tensor {
  return slice(t, dim, start, start + length);
}

/** Index `index` along `dim`, removing that dim. */
export function select(t: Tensor, dim: number, index: number): Tensor {
  const d = normDim(dim, t.ndim);
  const i = index < 0 ? index + t.shape[d]! : index;
  if (i < 0 || i >= t.shape[d]!) throw new Error(`select: index ${index} out of range for size ${t.shape[d]}`);
  const sliced = slice(t, d, i, i + 1);
  const out = squeeze(sliced, d);
  if (!out.requiresGrad) sliced.dispose(); // a graph input otherwise (backward needs it)
  return out;
}

export function expand(t: Tensor, shape: readonly number[]): Tensor {
  const off = shape.length - t.ndim;
  if (off < 0) throw new Error(`expand: target [${shape}] has fewer dims than [${t.shape}]`);
  if (shape.slice(0, off).some((n) => n < 0)) throw new Error(`expand: -1 is not allowed for new leading dims in [${shape}]`);
  const outShape = shape.map((n, i) => (n === -1 ? t.shape[i - off]! : n));
  const strides = outShape.map((n, i) => {
    const j = i - off;
    if (j < 0) return 0;
    const m = t.shape[j]!;
    if (m === n) return m === 1 ? 0 : t.strides[j]!;
    if (m === 1) return 0;
    throw new Error(`expand: cannot expand [${t.shape}] to [${shape}]`);
  });
  const out = t.viewAs(outShape, strides, t.offset);
  return record(out, 'expand', [t], (g) => [sumToShape(g, t.shape)]);
}

export function squeeze(t: Tensor, dim?: number): Tensor {
  let keep: number[];
  if (dim === undefined) keep = t.shape.map((_, i) => i).filter((i) => t.shape[i] !== 1);
  else {
    const d = normDim(dim, t.ndim);
    keep = t.shape.map((_, i) => i).filter((i) => i !== d || t.shape[i] !== 1);
  }
  const out = t.viewAs(keep.map((i) => t.shape[i]!), keep.map((i) => t.strides[i]!), t.offset);
  return record(out, 'squeeze', [t], (g) => [reshape(g, t.shape)]);
}

export function unsqueeze(t: Tensor, dim: number): Tensor {
  const d = dim < 0 ? dim + t.ndim + 1 : dim;
  if (d < 0 || d > t.ndim) throw new Error(`unsqueeze: dim ${dim} out of range for a ${t.ndim}-d tensor`);
  const shape = [...t.shape];
  const strides = [...t.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < t.ndim ? t.strides[d]! * t.shape[d]! : 1);
  const out = t.viewAs(shape, strides, t.offset);
  return record(out, 'unsqueeze', [t], (g) => [reshape(g, t.shape)]);
}

/** Contiguous version (the same tensor when already contiguous). */
export function contiguous(t: Tensor): Tensor {
  if (t.isContiguous()) return t;
  const out = contiguousCopy(t);
  return record(out, 'contiguous', [t], (g) => [g]);
}

// Set by reduce.ts (import cycle otherwise).
let sumToShapeImpl: ((g: Tensor, shape: readonly number[]) => Tensor) | undefined;
export function installSumToShape(fn: (g: Tensor, shape: readonly number[]) => Tensor): void {
  sumToShapeImpl = fn;
}
/** Sum a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  return sumToShapeImpl!(g, shape);
}
