// Summary statistics as the shape notebook prints them (pandas describe + percentiles): count, min,
// max, mean, std (sample, ddof=1 as pandas), and percentiles with numpy's default linear interpolation.

export interface FeatureStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  p1: number;
  p5: number;
  p50: number;
  p95: number;
  p99: number;
}

/** numpy.percentile(values, q) with the default 'linear' method. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function describe(values: readonly number[]): FeatureStats {
  const s = values.slice().sort((a, b) => a - b);
  const n = s.length;
  const mean = n ? s.reduce((t, v) => t + v, 0) / n : NaN;
  const variance = n > 1 ? s.reduce((t, v) => t + (v - mean) ** 2, 0) / (n - 1) : NaN;
  return {
    count: n,
    min: n ? s[0]! : NaN,
    max: n ? s[n - 1]! : NaN,
    mean,
    std: Math.sqrt(variance),
    p1: percentile(s, 1),
    p5: percentile(s, 5),
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
  };
}
