// Competition RLE: space-separated "start length" pairs, starts 1-indexed, pixels numbered
// row-major (index = row * width + col). This is what train.csv and submission.csv hold.
// (The competition page says column-major; the data and every scoring notebook are row-major.)

/** Runs of a binary mask in row-major order: 0-based starts, ascending, non-overlapping. */
export interface Runs {
  starts: Int32Array;
  lengths: Int32Array;
}

/** A problem with an RLE string; callers attach the file and row. */
export class RleFormatError extends Error {}

export const EMPTY_RUNS: Runs = { starts: new Int32Array(0), lengths: new Int32Array(0) };

/**
 * Parses and validates an RLE string for an image of `pixelCount` pixels: pairs complete, integers,
 * starts >= 1, lengths >= 1, sorted, not overlapping, and inside the image. Empty text = empty mask.
 */
export function parseRle(text: string, pixelCount: number): Runs {
  const trimmed = text.trim();
  if (trimmed === '') return EMPTY_RUNS;
  const tokens = trimmed.split(/\s+/);
  if (tokens.length % 2 !== 0) {
    throw new RleFormatError(`odd number of values (${tokens.length}); expected "start length" pairs`);
  }
  const n = tokens.length / 2;
  const starts = new Int32Array(n);
  const lengths = new Int32Array(n);
  let prevEnd = 0; // 0-based exclusive end of the previous run
  for (let k = 0; k < n; k++) {
    const sTok = tokens[2 * k]!;
    const lTok = tokens[2 * k + 1]!;
    if (!/^\d+$/.test(sTok) || !/^\d+$/.test(lTok)) {
      throw new RleFormatError(`pair ${k + 1} ("${sTok} ${lTok}") is not two non-negative integers`);
    }
    const start = Number(sTok);
    const length = Number(lTok);
    if (start < 1) throw new RleFormatError(`pair ${k + 1}: start ${start} is not positive (starts are 1-indexed)`);
    if (length < 1) throw new RleFormatError(`pair ${k + 1}: length ${length} is not positive`);
    const s0 = start - 1;
    if (k > 0 && s0 < prevEnd) {
      const prevStart = starts[k - 1]! + 1;
      throw new RleFormatError(
        s0 < starts[k - 1]!
          ? `pair ${k + 1}: start ${start} is below the previous start ${prevStart}; pairs must be sorted`
          : `pair ${k + 1}: run starting at ${start} overlaps the previous run (${prevStart}..${prevEnd})`,
      );
    }
    if (s0 + length > pixelCount) {
      throw new RleFormatError(
        `pair ${k + 1}: run ${start}..${start + length - 1} goes past the image end (${pixelCount} pixels)`,
      );
    }
    starts[k] = s0;
    lengths[k] = length;
    prevEnd = s0 + length;
  }
  return { starts, lengths };
}

export function runsToRle(runs: Runs): string {
  const parts: string[] = new Array(runs.starts.length * 2);
  for (let k = 0; k < runs.starts.length; k++) {
    parts[2 * k] = String(runs.starts[k]! + 1);
    parts[2 * k + 1] = String(runs.lengths[k]!);
  }
  return parts.join(' ');
}

/** Runs of a full-image row-major mask (any non-zero byte is foreground). */
export function maskToRuns(mask: Uint8Array): Runs {
  const s: number[] = [];
  const l: number[] = [];
  let i = 0;
  const n = mask.length;
  while (i < n) {
    if (mask[i] === 0) {
      i++;
      continue;
    }
    const start = i;
    while (i < n && mask[i] !== 0) i++;
    s.push(start);
    l.push(i - start);
  }
  return { starts: Int32Array.from(s), lengths: Int32Array.from(l) };
}

export function encodeRle(mask: Uint8Array): string {
  return runsToRle(maskToRuns(mask));
}

export function decodeRle(text: string, height: number, width: number): Uint8Array {
  const runs = parseRle(text, height * width);
  const mask = new Uint8Array(height * width);
  for (let k = 0; k < runs.starts.length; k++) mask.fill(1, runs.starts[k]!, runs.starts[k]! + runs.lengths[k]!);
  return mask;
}

export function runsArea(runs: Runs): number {
  let a = 0;
  for (let k = 0; k < runs.lengths.length; k++) a += runs.lengths[k]!;
  return a;
}

/** Intersection size of two sorted run lists (linear merge). */
export function runsIntersection(a: Runs, b: Runs): number {
  let i = 0;
  let j = 0;
  let inter = 0;
  const na = a.starts.length;
  const nb = b.starts.length;
  while (i < na && j < nb) {
    const as = a.starts[i]!;
    const ae = as + a.lengths[i]!;
    const bs = b.starts[j]!;
    const be = bs + b.lengths[j]!;
    const lo = as > bs ? as : bs;
    const hi = ae < be ? ae : be;
    if (hi > lo) inter += hi - lo;
    if (ae < be) i++;
    else j++;
  }
  return inter;
}

/** Union of two run lists as new runs (adjacent runs are joined). */
export function runsUnion(a: Runs, b: Runs): Runs {
  const s: number[] = [];
  const l: number[] = [];
  let i = 0;
  let j = 0;
  let curS = -1;
  let curE = -1;
  const push = (st: number, en: number) => {
    if (curE >= st) {
      if (en > curE) curE = en;
    } else {
      if (curS >= 0) {
        s.push(curS);
        l.push(curE - curS);
      }
      curS = st;
      curE = en;
    }
  };
  while (i < a.starts.length || j < b.starts.length) {
    const takeA = j >= b.starts.length || (i < a.starts.length && a.starts[i]! <= b.starts[j]!);
    if (takeA) {
      push(a.starts[i]!, a.starts[i]! + a.lengths[i]!);
      i++;
    } else {
      push(b.starts[j]!, b.starts[j]! + b.lengths[j]!);
      j++;
    }
  }
  if (curS >= 0) {
    s.push(curS);
    l.push(curE - curS);
  }
  return { starts: Int32Array.from(s), lengths: Int32Array.from(l) };
}

/** Pixel bounding box of runs in an image of the given width: inclusive [x0,y0]..[x1,y1], or null if empty. */
export function runsBounds(runs: Runs, width: number): { x0: number; y0: number; x1: number; y1: number } | null {
  const n = runs.starts.length;
  if (n === 0) return null;
  let x0 = width;
  let x1 = -1;
  const y0 = Math.floor(runs.starts[0]! / width);
  const y1 = Math.floor((runs.starts[n - 1]! + runs.lengths[n - 1]! - 1) / width);
  for (let k = 0; k < n; k++) {
    const s = runs.starts[k]!;
    const e = s + runs.lengths[k]! - 1;
    const rs = Math.floor(s / width);
    const re = Math.floor(e / width);
    if (rs !== re) {
      // A run that wraps to the next row touches column W-1 of its first row and column 0 of its last.
      x0 = 0;
      x1 = width - 1;
    } else {
      const cs = s - rs * width;
      const ce = e - rs * width;
      if (cs < x0) x0 = cs;
      if (ce > x1) x1 = ce;
    }
  }
  return { x0, y0, x1, y1 };
}
