// Float64 host tensors for the engine and kernel tests: random inputs (rounded to f32 so the GPU
// sees the same values), broadcasting maps and permutations in plain TypeScript, and helpers that
// upload a host tensor as a contiguous, transposed or strided-and-offset GPU view. The reduction
// reference is kernels/reduce/reference.ts.
import { type DType, fromArray, type Tensor, transpose, slice } from '../../engine';
import { type Rng } from '../util';

export interface Host {
  data: Float64Array;
  shape: number[];
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

export function unravelIndex(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

export function ravelIndex(idx: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d]! + idx[d]!;
  return i;
}

export function host(data: ArrayLike<number>, shape: readonly number[]): Host {
  if (data.length !== numel(shape)) throw new Error(`host: ${data.length} values for shape [${shape}]`);
  return { data: Float64Array.from(data), shape: [...shape] };
}

/** Uniform random values in [lo, hi), rounded to f32. */
export function randHost(rng: Rng, shape: readonly number[], lo = -1, hi = 1): Host {
  const data = rng.uniformArray(numel(shape), lo, hi).map(Math.fround);
  return { data, shape: [...shape] };
}

/** Random integers in [lo, hi). */
export function randIntHost(rng: Rng, shape: readonly number[], lo: number, hi: number): Host {
  const data = new Float64Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.int(lo, hi);
  return { data, shape: [...shape] };
}

export function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const n = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let v = 1;
    for (const s of shapes) {
      const x = s[s.length - n + i] ?? 1;
      if (x !== 1) {
        if (v !== 1 && v !== x) throw new Error(`broadcast [${shapes.join('] [')}]`);
        v = x;
      }
    }
    out.push(v);
  }
  return out;
}

/** Flat index into `shape` of the element that broadcasts to multi-index `idx` of the output. */
function broadcastSource(idx: readonly number[], shape: readonly number[]): number {
  const off = idx.length - shape.length;
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d]! + (shape[d] === 1 ? 0 : idx[d + off]!);
  return i;
}

/** out[i] = f(inputs broadcast to a common shape at i). */
export function mapHost(inputs: Host[], f: (...v: number[]) => number): Host {
  const shape = broadcastShape(...inputs.map((h) => h.shape));
  const n = numel(shape);
  const data = new Float64Array(n);
  const args = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    const idx = unravelIndex(i, shape);
    for (let j = 0; j < inputs.length; j++) args[j] = inputs[j]!.data[broadcastSource(idx, inputs[j]!.shape)]!;
    data[i] = f(...args);
  }
  return { data, shape };
}

/** Sum `g` (broadcast shape) down to `shape` — the reference un-broadcast. */
export function sumToShapeHost(g: Host, shape: readonly number[]): Host {
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < g.data.length; i++) out[broadcastSource(unravelIndex(i, g.shape), shape)]! += g.data[i]!;
  return { data: out, shape: [...shape] };
}

export function permuteHost(h: Host, perm: readonly number[]): Host {
  const shape = perm.map((p) => h.shape[p]!);
  const st = stridesOf(h.shape);
  const data = new Float64Array(h.data.length);
  for (let i = 0; i < data.length; i++) {
    const idx = unravelIndex(i, shape);
    let src = 0;
    for (let d = 0; d < perm.length; d++) src += idx[d]! * st[perm[d]!]!;
    data[i] = h.data[src]!;
  }
  return { data, shape };
}

export type Layout = 'contiguous' | 'transposed' | 'strided';

/**
 * Upload `h` as a GPU tensor with the given memory layout and the same logical values:
 * 'transposed' stores the last two dims swapped and returns a transposed view; 'strided' stores
 * every value at an odd position of a twice-as-long last dim and returns a step-2 slice from
 * offset 1. The result is detached (a leaf); `requiresGrad` marks it for gradient tests.
 */
export function upload(h: Host, layout: Layout = 'contiguous', opts: { dtype?: DType; requiresGrad?: boolean } = {}): Tensor {
  const dtype = opts.dtype ?? 'f32';
  let t: Tensor;
  if (layout === 'contiguous' || h.shape.length === 0) {
    t = fromArray(h.data, h.shape, dtype);
  } else if (layout === 'transposed') {
    if (h.shape.length < 2) return upload(h, 'strided', opts);
    const r = h.shape.length;
    const perm = h.shape.map((_, i) => i);
    [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
    const stored = permuteHost(h, perm);
    const base = fromArray(stored.data, stored.shape, dtype);
    t = transpose(base, -2, -1).detach();
    base.dispose();
  } else {
    const last = h.shape[h.shape.length - 1]!;
    const wide = new Float64Array(h.data.length * 2).fill(dtype === 'f32' ? 12345 : 77);
    for (let i = 0; i < h.data.length; i++) {
      const row = Math.floor(i / last);
      wide[row * 2 * last + 2 * (i % last) + 1] = h.data[i]!;
    }
    const base = fromArray(wide, [...h.shape.slice(0, -1), 2 * last], dtype);
    t = slice(base, -1, 1, undefined, 2).detach();
    base.dispose();
  }
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

/** Read a tensor back as float64. */
export async function download(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}
