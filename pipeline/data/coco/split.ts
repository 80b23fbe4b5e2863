// Stratified K-fold over images by cell type, seeded; optionally grouped by sample so that no
// sample has images on both sides of a fold. (The notebook's sklearn folds depend on file-glob
// order and numpy's RNG and cannot be reproduced; this is "K folds, stratified, seeded".)
import { Rng } from '../../../runtime/rng';

export interface SplitItem {
  id: number;
  stratum: string;
  group?: string;
}

/** Fold index per item id. */
export function stratifiedKFold(items: readonly SplitItem[], k: number, seed: number, grouped: boolean): Map<number, number> {
  if (!Number.isInteger(k) || k < 2) throw new Error(`folds must be an integer >= 2, got ${k}`);
  const rng = new Rng(seed);
  const fold = new Map<number, number>();
  const strata = [...new Set(items.map((x) => x.stratum))].sort();
  const foldTotals = new Array<number>(k).fill(0);
  for (const s of strata) {
    const members = items.filter((x) => x.stratum === s).sort((a, b) => a.id - b.id);
    // units: single images, or whole groups
    const units = new Map<string, number[]>();
    for (const m of members) {
      const key = grouped ? `g:${m.group ?? m.id}` : `i:${m.id}`;
      (units.get(key) ?? units.set(key, []).get(key)!).push(m.id);
    }
    const list = rng.shuffle([...units.values()]);
    // larger groups first (stable after the shuffle), each to the fold with the fewest images of
    // this stratum, then the fewest overall, then the lowest index
    list.sort((a, b) => b.length - a.length);
    const perFold = new Array<number>(k).fill(0);
    for (const unit of list) {
      let best = 0;
      for (let f = 1; f < k; f++) {
        if (perFold[f]! < perFold[best]! || (perFold[f] === perFold[best] && foldTotals[f]! < foldTotals[best]!)) best = f;
      }
      for (const id of unit) fold.set(id, best);
      perFold[best]! += unit.length;
      foldTotals[best]! += unit.length;
    }
  }
  return fold;
}
