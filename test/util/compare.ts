// Compare a GPU result with a float64 reference. A failure names the worst element (flat index and
// multi-index when a shape is given), both values, and the max absolute and relative errors.

export interface CloseOptions {
  atol?: number;
  rtol?: number;
  shape?: readonly number[];
  what?: string;
}

export interface CloseReport {
  maxAbs: number;
  maxRel: number;
  worstIndex: number;
  ok: boolean;
}

type NumArray = ArrayLike<number>;

export function compareClose(actual: NumArray, expected: NumArray, opts: CloseOptions = {}): CloseReport {
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-4;
  if (actual.length !== expected.length) {
    throw new Error(`${opts.what ?? 'result'}: length ${actual.length} != expected ${expected.length}`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  let worstIndex = -1;
  let worstExcess = -Infinity;
  let ok = true;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    let abs: number;
    if (Number.isNaN(a) || Number.isNaN(e)) abs = Number.isNaN(a) && Number.isNaN(e) ? 0 : Infinity;
    else if (a === e) abs = 0; // covers equal infinities
    else abs = Math.abs(a - e);
    const rel = abs / Math.max(Math.abs(e), 1e-30);
    const tol = atol + rtol * Math.abs(e);
    const excess = abs - tol;
    if (abs > maxAbs) maxAbs = abs;
    if (abs > 0 && rel > maxRel) maxRel = rel;
    if (excess > worstExcess) {
      worstExcess = excess;
      worstIndex = i;
    }
    if (!(abs <= tol)) ok = false;
  }
  return { maxAbs, maxRel, worstIndex, ok };
}

export function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = index % shape[d]!;
    index = Math.floor(index / shape[d]!);
  }
  return out;
}

/** Throws (failing the test) unless every element satisfies |a - e| <= atol + rtol * |e|. */
export function expectClose(actual: NumArray, expected: NumArray, opts: CloseOptions = {}): CloseReport {
  const r = compareClose(actual, expected, opts);
  if (!r.ok) {
    const i = r.worstIndex;
    const where = opts.shape ? ` at [${unravel(i, opts.shape).join(', ')}]` : '';
    throw new Error(
      `${opts.what ?? 'result'} differs from reference: worst element #${i}${where}: got ${actual[i]}, ` +
        `expected ${expected[i]} (|diff| ${Math.abs(actual[i]! - expected[i]!)}); ` +
        `max abs err ${r.maxAbs.toExponential(3)}, max rel err ${r.maxRel.toExponential(3)}, ` +
        `atol ${opts.atol ?? 1e-5}, rtol ${opts.rtol ?? 1e-4}, n=${actual.length}`,
    );
  }
  return r;
}

/** Central finite-difference gradient of a scalar float64 function, for checking references. */
export function numericGrad(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const orig = x[i]!;
    x[i] = orig + eps;
    const fp = f(x);
    x[i] = orig - eps;
    const fm = f(x);
    x[i] = orig;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}
