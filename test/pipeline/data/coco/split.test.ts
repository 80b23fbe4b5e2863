import { describe, expect, it } from 'vitest';
import { stratifiedKFold, type SplitItem } from '../../../../pipeline/data/coco/split';

const items: SplitItem[] = [];
for (let i = 1; i <= 61; i++) {
  const stratum = i <= 16 ? 'shsy5y' : i <= 29 ? 'astro' : 'cort';
  items.push({ id: i, stratum, group: `${stratum}-${Math.floor(i / 3)}` });
}

describe('stratified K-fold', () => {
  it('balances every cell type across folds (counts differ by at most one)', () => {
    const fold = stratifiedKFold(items, 5, 777, false);
    for (const s of ['shsy5y', 'astro', 'cort']) {
      const counts = [0, 1, 2, 3, 4].map((k) => items.filter((x) => x.stratum === s && fold.get(x.id) === k).length);
      expect(Math.max(...counts) - Math.min(...counts), `${s}: ${counts}`).toBeLessThanOrEqual(1);
    }
    expect(fold.size).toBe(61);
  });

  it('is deterministic for a seed and changes with it', () => {
    const a = stratifiedKFold(items, 5, 777, false);
    expect(stratifiedKFold(items, 5, 777, false)).toEqual(a);
    expect(stratifiedKFold(items, 5, 778, false)).not.toEqual(a);
  });

  it('keeps every sample on one side when grouped, still roughly balanced', () => {
    const fold = stratifiedKFold(items, 4, 1, true);
    const groupFold = new Map<string, number>();
    for (const x of items) {
      const f = fold.get(x.id)!;
      if (groupFold.has(x.group!)) expect(groupFold.get(x.group!)).toBe(f);
      groupFold.set(x.group!, f);
    }
    const counts = [0, 1, 2, 3].map((k) => items.filter((x) => fold.get(x.id) === k).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(4);
  });

  it('rejects fewer than two folds', () => {
    expect(() => stratifiedKFold(items, 1, 0, false)).toThrow(/folds must be an integer >= 2/);
  });
});
