// Post-processing of one image's predicted instances into non-overlapping submission masks:
// image class = most frequent predicted class (ties -> lowest id); per-class score threshold;
// instances in descending score order; optional shape filters from the `cellseg analyze` table
// (checked on the whole predicted mask, as mistag's notebook); overlap removal (pixels already
// taken are removed); per-class minimum pixel count after removal (Slawek's MIN_PIXELS). Two
// rules of mistag's notebooks (post/mask-topology.ts): hole filling of each mask before the shape
// filter (`fillHoles`, off by default: the TTA submission path does not fill; its single-model
// path does) and the "chopped cells" check after overlap removal (`singleContour`, on by default as
// in both paths: a mask whose remaining pixels do not form exactly one contour is dropped).
import { cellTypeOfCategory, DEFAULT_MIN_PIXELS, DEFAULT_SCORE_THRESHOLDS, type CellType } from '../data/cell-types';
import { cropToRuns, tightenCrop, type MaskCrop } from '../../structures/mask-crop';
import type { Runs } from '../../structures/rle';
import { regionProps, type ShapeFeatures } from '../shape/region-props';
import type { ShapeReport } from '../shape/analyze';
import { contourCount, fillHoles } from './mask-topology';

export interface Candidate {
  score: number;
  categoryId: number;
  mask: MaskCrop;
}

export interface PostprocessOptions {
  scoreThresholds: Record<CellType, number>;
  minPixels: Record<CellType, number>;
  shapeData?: ShapeReport['shape_data'];
  /** Features whose 1 % percentile is a lower bound (default: major_axis_length, as the notebook). */
  shapeMin?: (keyof ShapeFeatures)[];
  /** Features whose 99 % percentile is an upper bound (default none). */
  shapeMax?: (keyof ShapeFeatures)[];
  /** Fill the holes of each mask first (default false). */
  fillHoles?: boolean;
  /** Drop masks that are not exactly one contour after overlap removal (default true). */
  singleContour?: boolean;
}

export const DEFAULT_POSTPROCESS: PostprocessOptions = {
  scoreThresholds: DEFAULT_SCORE_THRESHOLDS,
  minPixels: DEFAULT_MIN_PIXELS,
};

export interface PostprocessResult {
  cellType: CellType | undefined;
  masks: Runs[];
  dropped: { belowScore: number; shape: number; tooSmall: number; chopped: number };
}

/** Most frequent category (ties -> the lowest id); undefined without candidates. */
export function imageClass(cands: readonly Candidate[]): CellType | undefined {
  const counts = new Map<number, number>();
  for (const c of cands) counts.set(c.categoryId, (counts.get(c.categoryId) ?? 0) + 1);
  const best = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
  return best ? cellTypeOfCategory(best[0]) : undefined;
}

export function postprocessImage(cands: readonly Candidate[], width: number, height: number, opts: PostprocessOptions): PostprocessResult {
  const cellType = imageClass(cands);
  const result: PostprocessResult = { cellType, masks: [], dropped: { belowScore: 0, shape: 0, tooSmall: 0, chopped: 0 } };
  if (!cellType) return result;
  const thr = opts.scoreThresholds[cellType];
  const minPx = opts.minPixels[cellType];
  const order = cands
    .map((c, i) => ({ c, i }))
    .sort((a, b) => b.c.score - a.c.score || a.i - b.i)
    .map((x) => x.c);
  const used = new Uint8Array(width * height);
  const mins = opts.shapeMin ?? ['major_axis_length'];
  const maxs = opts.shapeMax ?? [];
  for (const c of order) {
    if (c.score < thr) {
      result.dropped.belowScore++;
      continue;
    }
    const m = opts.fillHoles ? fillHoles(c.mask) : c.mask;
    if (opts.shapeData) {
      const f = regionProps(m);
      const ok =
        f !== null &&
        mins.every((k) => {
          const r = opts.shapeData![k]?.[cellType];
          return !r || f[k] >= r.min;
        }) &&
        maxs.every((k) => {
          const r = opts.shapeData![k]?.[cellType];
          return !r || f[k] <= r.max;
        });
      if (!ok) {
        result.dropped.shape++;
        continue;
      }
    }
    const data = new Uint8Array(m.data.length);
    let remaining = 0;
    for (let y = 0; y < m.height; y++) {
      for (let x = 0; x < m.width; x++) {
        const i = y * m.width + x;
        if (m.data[i] && !used[(m.y0 + y) * width + m.x0 + x]) {
          data[i] = 1;
          remaining++;
        }
      }
    }
    if (remaining === 0 || remaining < minPx) {
      result.dropped.tooSmall++;
      continue;
    }
    const kept = tightenCrop({ ...m, data });
    if ((opts.singleContour ?? true) && contourCount(kept) !== 1) {
      result.dropped.chopped++;
      continue;
    }
    for (let y = 0; y < m.height; y++) {
      for (let x = 0; x < m.width; x++) if (data[y * m.width + x]) used[(m.y0 + y) * width + m.x0 + x] = 1;
    }
    result.masks.push(cropToRuns(kept));
  }
  return result;
}
