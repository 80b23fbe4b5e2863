// Float64 references of the normalisation kernels (FrozenBN, BatchNorm, GroupNorm), pure
// TypeScript: forward over "statistic rows" (a channel for BatchNorm, an (image, group) for
// GroupNorm) and its analytic backward. The kernel tests (test/kernels/norm/) and the module tests
// (test/models/vovnet-norm.test.ts) check against them.

export interface RefOut {
  y: Float64Array;
  mean: Float64Array;
  varB: Float64Array;
}

/** Float64 normalisation over statistic rows; `statOf(n, c)` picks the row. */
export function refNorm(x: Float64Array, [n, c, hw]: number[], rows: number, statOf: (n: number, c: number) => number, w: Float64Array, b: Float64Array, eps: number, fixed?: { mean: Float64Array; varB: Float64Array }): RefOut {
  const mean = new Float64Array(rows);
  const cnt = new Float64Array(rows);
  const varB = new Float64Array(rows);
  if (fixed) {
    mean.set(fixed.mean);
    varB.set(fixed.varB);
  } else {
    for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let j = 0; j < hw; j++) {
      const s = statOf(i, k);
      mean[s]! += x[(i * c + k) * hw + j]!;
      cnt[s]!++;
    }
    for (let s = 0; s < rows; s++) mean[s]! /= cnt[s]!;
    for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let j = 0; j < hw; j++) {
      const s = statOf(i, k);
      varB[s]! += (x[(i * c + k) * hw + j]! - mean[s]!) ** 2;
    }
    for (let s = 0; s < rows; s++) varB[s]! /= cnt[s]!;
  }
  const y = new Float64Array(x.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let j = 0; j < hw; j++) {
    const s = statOf(i, k);
    const e = (i * c + k) * hw + j;
    y[e] = ((x[e]! - mean[s]!) / Math.sqrt(varB[s]! + eps)) * w[k]! + b[k]!;
  }
  return { y, mean, varB };
}

/** Analytic float64 backward of refNorm with statistics from x: [dx, dw, db]. */
export function refNormBackward(x: Float64Array, g: Float64Array, [n, c, hw]: number[], rows: number, statOf: (n: number, c: number) => number, w: Float64Array, eps: number, fixed?: { mean: Float64Array; varB: Float64Array }): Float64Array[] {
  const { mean, varB } = refNorm(x, [n, c, hw], rows, statOf, w, new Float64Array(c), eps, fixed);
  const rstd = varB.map((v) => 1 / Math.sqrt(v + eps));
  const sa = new Float64Array(rows);
  const sb = new Float64Array(rows);
  const cnt = new Float64Array(rows);
  const dw = new Float64Array(c);
  const db = new Float64Array(c);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let j = 0; j < hw; j++) {
    const s = statOf(i, k);
    const e = (i * c + k) * hw + j;
    const xh = (x[e]! - mean[s]!) * rstd[s]!;
    sa[s]! += w[k]! * g[e]!;
    sb[s]! += w[k]! * g[e]! * xh;
    cnt[s]!++;
    dw[k]! += g[e]! * xh;
    db[k]! += g[e]!;
  }
  const dx = new Float64Array(x.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let j = 0; j < hw; j++) {
    const s = statOf(i, k);
    const e = (i * c + k) * hw + j;
    const xh = (x[e]! - mean[s]!) * rstd[s]!;
    dx[e] = fixed ? rstd[s]! * w[k]! * g[e]! : rstd[s]! * (w[k]! * g[e]! - sa[s]! / cnt[s]! - (xh * sb[s]!) / cnt[s]!);
  }
  return [dx, dw, db];
}

/** x [N,H,W,C] (channels last) as [N,C,H,W]. */
export function nhwcToNchw(a: ArrayLike<number>, [n, c, h, w]: number[]): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) {
    out[((i * c + k) * h + y) * w + z] = a[((i * h + y) * w + z) * c + k]!;
  }
  return out;
}

