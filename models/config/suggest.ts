// "Did you mean ...?" for unknown config keys: the valid keys closest in edit distance, either as
// a whole dotted path (a typo) or by their last component (the right name in the wrong section).

export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The best few of `valid` for the unknown dotted key `key` (ties kept, at most `max`). */
export function nearestKeys(key: string, valid: readonly string[], max = 3): string[] {
  const last = (k: string) => k.slice(k.lastIndexOf('.') + 1);
  const scored = valid.map((v) => ({
    v,
    d: Math.min(editDistance(key.toUpperCase(), v), editDistance(last(key).toUpperCase(), last(v)) + 1),
  }));
  const best = Math.min(...scored.map((s) => s.d));
  return scored.filter((s) => s.d === best).slice(0, max).map((s) => s.v);
}
