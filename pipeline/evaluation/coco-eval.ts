// COCO detection/segmentation evaluation with pycocotools semantics (cocoeval.py + coco.py loadRes),
// reproduced decision for decision so the summary numbers match it to float rounding:
// - results are loaded as loadRes does: the FIRST result decides the branch; with a bbox the area
//   is bbox w*h (even for segm evaluation) and a missing mask becomes the box polygon; without one
//   the area comes from the RLE and the box from rleToBbox; ids are 1-based positions;
// - detections per image and category are ordered by a stable sort on -score and cut to the
//   largest maxDets before IoUs are computed;
// - matching walks ground truth with ignored (crowd / out-of-area) objects last, keeps the best IoU
//   >= min(t, 1-1e-10) with later equal IoUs replacing earlier ones, and stops at an ignored gt
//   once a regular one matched; unmatched detections outside the area range are ignored;
// - area ranges are inclusive at both ends; precision uses the monotone envelope, 101 recall
//   thresholds and searchsorted('left'); settings without ground truth stay -1.
import {
  bboxIou,
  cocoRleArea,
  cocoRleFromPolygon,
  cocoRleIou,
  cocoRleToBbox,
  segmentationToCocoRle,
  type Bbox,
  type CocoRle,
} from '../../structures/coco-rle';
import type { CocoDataset, CocoResult } from '../data/coco/types';
import { defaultCocoParams, type CocoEvalParams } from './coco-params';

const EPS = 2.220446049250313e-16; // np.spacing(1)

interface EvalAnn {
  id: number;
  imageId: number;
  categoryId: number;
  score: number;
  area: number;
  bbox: Bbox;
  iscrowd: boolean;
  segmentation: unknown;
  rle?: CocoRle;
}

interface EvalImg {
  dtIds: number[];
  dtScores: number[];
  /** [T][D] matched gt id or 0 */
  dtMatches: Float64Array[];
  dtIgnore: Uint8Array[];
  gtIgnore: Uint8Array;
}

export interface CocoSummary {
  AP: number;
  AP50: number;
  AP75: number;
  APs: number;
  APm: number;
  APl: number;
  AR1: number;
  AR10: number;
  AR100: number;
  ARs: number;
  ARm: number;
  ARl: number;
}

export const SUMMARY_KEYS: readonly (keyof CocoSummary)[] = [
  'AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl',
];

export interface CocoEvalOutput {
  summary: CocoSummary;
  /** [T][R][K][A][M] flattened in that order; -1 where undefined. */
  precision: Float64Array;
  /** [T][K][A][M] flattened. */
  recall: Float64Array;
  params: CocoEvalParams;
  catIds: number[];
  imgIds: number[];
}

/** Stable argsort by descending score (numpy argsort(-score, kind='mergesort')). */
function stableOrderByScore<T extends { score: number }>(list: readonly T[]): T[] {
  return list
    .map((d, i) => ({ d, i }))
    .sort((a, b) => b.d.score - a.d.score || a.i - b.i)
    .map((x) => x.d);
}

/** COCO.loadRes, including its branch on the first result. */
export function loadResults(gt: CocoDataset, results: readonly CocoResult[]): EvalAnn[] {
  if (results.length === 0) return [];
  const first = results[0]!;
  const boxBranch = Array.isArray(first.bbox) && first.bbox.length > 0;
  return results.map((r, i) => {
    if (boxBranch) {
      const bb = r.bbox!;
      const [x1, x2, y1, y2] = [bb[0], bb[0] + bb[2], bb[1], bb[1] + bb[3]];
      return {
        id: i + 1,
        imageId: r.image_id,
        categoryId: r.category_id,
        score: r.score,
        area: bb[2] * bb[3],
        bbox: bb,
        iscrowd: false,
        segmentation: r.segmentation ?? [[x1, y1, x1, y2, x2, y2, x2, y1]],
      };
    }
    const img = gt.images.find((im) => im.id === r.image_id)!;
    const rle = segmentationToCocoRle(r.segmentation, img.height, img.width);
    return {
      id: i + 1,
      imageId: r.image_id,
      categoryId: r.category_id,
      score: r.score,
      area: cocoRleArea(rle),
      bbox: r.bbox ?? cocoRleToBbox(rle),
      iscrowd: false,
      segmentation: r.segmentation,
      rle,
    };
  });
}

export interface CocoEvalOptions {
  iouType: 'segm' | 'bbox';
  maxDets?: number[];
}

export function cocoEvaluate(gt: CocoDataset, results: readonly CocoResult[], opts: CocoEvalOptions): CocoEvalOutput {
  const p = defaultCocoParams(opts.iouType, opts.maxDets);
  const imgIds = [...new Set(gt.images.map((im) => im.id))].sort((a, b) => a - b);
  const catIds = [...new Set(gt.categories.map((c) => c.id))].sort((a, b) => a - b);
  const imgSize = new Map(gt.images.map((im) => [im.id, im]));
  const catSet = new Set(catIds);
  const key = (img: number, cat: number) => `${img}:${cat}`;

  const gts = new Map<string, EvalAnn[]>();
  const dts = new Map<string, EvalAnn[]>();
  for (const a of gt.annotations) {
    if (!imgSize.has(a.image_id) || !catSet.has(a.category_id)) continue;
    const ann: EvalAnn = {
      id: a.id,
      imageId: a.image_id,
      categoryId: a.category_id,
      score: 0,
      area: a.area,
      bbox: a.bbox,
      iscrowd: !!a.iscrowd,
      segmentation: a.segmentation,
    };
    const k = key(a.image_id, a.category_id);
    (gts.get(k) ?? gts.set(k, []).get(k)!).push(ann);
  }
  for (const d of loadResults(gt, results)) {
    if (!imgSize.has(d.imageId) || !catSet.has(d.categoryId)) continue;
    const k = key(d.imageId, d.categoryId);
    (dts.get(k) ?? dts.set(k, []).get(k)!).push(d);
  }
  const rleOf = (a: EvalAnn): CocoRle => {
    if (!a.rle) {
      const im = imgSize.get(a.imageId)!;
      if (a.segmentation === undefined) throw new Error(`annotation ${a.id} has no segmentation for segm evaluation`);
      a.rle = segmentationToCocoRle(a.segmentation, im.height, im.width);
    }
    return a.rle;
  };

  const maxDetLast = p.maxDets[p.maxDets.length - 1]!;
  const T = p.iouThrs.length;
  const R = p.recThrs.length;
  const K = catIds.length;
  const A = p.areaRanges.length;
  const M = p.maxDets.length;
  const I = imgIds.length;

  // evalImgs[k][a][i]
  const evalImgs: (EvalImg | null)[][][] = catIds.map(() => p.areaRanges.map(() => new Array<EvalImg | null>(I).fill(null)));

  for (let k = 0; k < K; k++) {
    const catId = catIds[k]!;
    for (let i = 0; i < I; i++) {
      const imgId = imgIds[i]!;
      const g = gts.get(key(imgId, catId)) ?? [];
      const dAll = dts.get(key(imgId, catId)) ?? [];
      if (g.length === 0 && dAll.length === 0) continue;
      // computeIoU: detections sorted and cut to the largest maxDets
      const dSorted = stableOrderByScore(dAll).slice(0, maxDetLast);
      const crowd = g.map((x) => x.iscrowd);
      let ious: number[][] = [];
      if (dSorted.length > 0 && g.length > 0) {
        ious =
          p.iouType === 'segm'
            ? cocoRleIou(dSorted.map(rleOf), g.map(rleOf), crowd)
            : bboxIou(
                dSorted.map((d) => d.bbox),
                g.map((x) => x.bbox),
                crowd,
              );
      }
      for (let a = 0; a < A; a++) {
        const rng = p.areaRanges[a]!;
        evalImgs[k]![a]![i] = evaluateImg(g, dSorted, ious, rng.lo, rng.hi, maxDetLast, p.iouThrs);
      }
    }
  }

  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const pIdx = (t: number, r: number, k: number, a: number, m: number) => (((t * R + r) * K + k) * A + a) * M + m;
  const rIdx = (t: number, k: number, a: number, m: number) => ((t * K + k) * A + a) * M + m;

  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      for (let m = 0; m < M; m++) {
        const maxDet = p.maxDets[m]!;
        const E = evalImgs[k]![a]!.filter((e): e is EvalImg => e !== null);
        if (E.length === 0) continue;
        const scores: number[] = [];
        const src: { e: EvalImg; j: number }[] = [];
        let npig = 0;
        for (const e of E) {
          const nd = Math.min(maxDet, e.dtScores.length);
          for (let j = 0; j < nd; j++) {
            scores.push(e.dtScores[j]!);
            src.push({ e, j });
          }
          for (let g = 0; g < e.gtIgnore.length; g++) if (e.gtIgnore[g] === 0) npig++;
        }
        if (npig === 0) continue;
        const order = scores.map((s, i) => ({ s, i })).sort((x, y) => y.s - x.s || x.i - y.i);
        const nd = order.length;
        for (let t = 0; t < T; t++) {
          const pr = new Float64Array(nd);
          const rc = new Float64Array(nd);
          let tp = 0;
          let fp = 0;
          for (let n = 0; n < nd; n++) {
            const { e, j } = src[order[n]!.i]!;
            const matched = e.dtMatches[t]![j]! !== 0;
            const ignored = e.dtIgnore[t]![j]! !== 0;
            if (matched && !ignored) tp++;
            if (!matched && !ignored) fp++;
            rc[n] = tp / npig;
            pr[n] = tp / (fp + tp + EPS);
          }
          recall[rIdx(t, k, a, m)] = nd ? rc[nd - 1]! : 0;
          for (let n = nd - 1; n > 0; n--) if (pr[n]! > pr[n - 1]!) pr[n - 1] = pr[n]!;
          let pi = 0;
          for (let ri = 0; ri < R; ri++) {
            const thr = p.recThrs[ri]!;
            while (pi < nd && rc[pi]! < thr) pi++; // searchsorted 'left' (rc is non-decreasing)
            precision[pIdx(t, ri, k, a, m)] = pi < nd ? pr[pi]! : 0;
          }
        }
      }
    }
  }

  const summarizeOne = (ap: boolean, iouThr: number | undefined, areaLbl: string, maxDets: number): number => {
    const aind = p.areaRanges.findIndex((r) => r.label === areaLbl);
    const mind = p.maxDets.indexOf(maxDets);
    if (aind < 0 || mind < 0) return -1; // pycocotools selects an empty slice: mean of nothing -> -1
    const tList = iouThr === undefined ? p.iouThrs.map((_, t) => t) : p.iouThrs.flatMap((v, t) => (v === iouThr ? [t] : []));
    let sum = 0;
    let n = 0;
    for (const t of tList) {
      for (let k = 0; k < K; k++) {
        if (ap) {
          for (let r = 0; r < R; r++) {
            const v = precision[pIdx(t, r, k, aind, mind)]!;
            if (v > -1) {
              sum += v;
              n++;
            }
          }
        } else {
          const v = recall[rIdx(t, k, aind, mind)]!;
          if (v > -1) {
            sum += v;
            n++;
          }
        }
      }
    }
    return n === 0 ? -1 : sum / n;
  };
  const md = p.maxDets;
  const m2 = md[2] ?? -1;
  const summary: CocoSummary = {
    AP: summarizeOne(true, undefined, 'all', 100),
    AP50: summarizeOne(true, 0.5, 'all', m2),
    AP75: summarizeOne(true, 0.75, 'all', m2),
    APs: summarizeOne(true, undefined, 'small', m2),
    APm: summarizeOne(true, undefined, 'medium', m2),
    APl: summarizeOne(true, undefined, 'large', m2),
    AR1: summarizeOne(false, undefined, 'all', md[0] ?? -1),
    AR10: summarizeOne(false, undefined, 'all', md[1] ?? -1),
    AR100: summarizeOne(false, undefined, 'all', m2),
    ARs: summarizeOne(false, undefined, 'small', m2),
    ARm: summarizeOne(false, undefined, 'medium', m2),
    ARl: summarizeOne(false, undefined, 'large', m2),
  };
  return { summary, precision, recall, params: p, catIds, imgIds };
}

/** cocoeval.evaluateImg for one image, category and area range (dt already sorted and cut). */
function evaluateImg(
  gtIn: readonly EvalAnn[],
  dtSorted: readonly EvalAnn[],
  iousIn: readonly number[][],
  lo: number,
  hi: number,
  maxDet: number,
  iouThrs: readonly number[],
): EvalImg {
  const ignoreFlag = gtIn.map((g) => (g.iscrowd || g.area < lo || g.area > hi ? 1 : 0));
  // stable sort: regular gt first, ignored last
  const gtind = gtIn.map((_, i) => i).sort((a, b) => ignoreFlag[a]! - ignoreFlag[b]! || a - b);
  const gt = gtind.map((i) => gtIn[i]!);
  const dt = dtSorted.slice(0, maxDet);
  const T = iouThrs.length;
  const G = gt.length;
  const D = dt.length;
  const gtIg = Uint8Array.from(gtind.map((i) => ignoreFlag[i]!));
  const iscrowd = gt.map((g) => g.iscrowd);
  const gtm = Array.from({ length: T }, () => new Float64Array(G));
  const dtm = Array.from({ length: T }, () => new Float64Array(D));
  const dtIg = Array.from({ length: T }, () => new Uint8Array(D));
  if (D > 0 && G > 0) {
    // Only pairs with IoU >= the lowest threshold can ever match; the rest would `continue`. Visiting
    // just those, in the sorted gt order, keeps pycocotools' decisions: its `break` stops at the first
    // ignored gt once a regular one matched, and ignored gts are sorted after all regular ones.
    const pos = new Int32Array(G);
    gtind.forEach((orig, p) => (pos[orig] = p));
    const minThr = Math.min(...iouThrs.map((t) => Math.min(t, 1 - 1e-10)));
    const cand: { g: number; iou: number }[][] = [];
    for (let d = 0; d < D; d++) {
      const row = iousIn[d]!;
      const list: { g: number; iou: number }[] = [];
      for (let g0 = 0; g0 < G; g0++) if (row[g0]! >= minThr) list.push({ g: pos[g0]!, iou: row[g0]! });
      list.sort((a, b) => a.g - b.g);
      cand.push(list);
    }
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        let iou = Math.min(iouThrs[t]!, 1 - 1e-10);
        let m = -1;
        for (const c of cand[d]!) {
          const g = c.g;
          if (gtm[t]![g]! > 0 && !iscrowd[g]) continue;
          if (m > -1 && gtIg[m] === 0 && gtIg[g] === 1) break;
          if (c.iou < iou) continue;
          iou = c.iou;
          m = g;
        }
        if (m === -1) continue;
        dtIg[t]![d] = gtIg[m]!;
        dtm[t]![d] = gt[m]!.id;
        gtm[t]![m] = dt[d]!.id;
      }
    }
  }
  for (let d = 0; d < D; d++) {
    const outside = dt[d]!.area < lo || dt[d]!.area > hi;
    if (!outside) continue;
    for (let t = 0; t < T; t++) if (dtm[t]![d] === 0) dtIg[t]![d] = 1;
  }
  return { dtIds: dt.map((d) => d.id), dtScores: dt.map((d) => d.score), dtMatches: dtm, dtIgnore: dtIg, gtIgnore: gtIg };
}

/** pycocotools' printed summary lines. */
export function formatCocoSummary(s: CocoSummary, iouType: string, maxDets: number[]): string[] {
  const md = [...maxDets].sort((a, b) => a - b);
  const line = (ap: boolean, iou: string, area: string, m: number, v: number) =>
    ` ${(ap ? 'Average Precision' : 'Average Recall').padEnd(18)} ${ap ? '(AP)' : '(AR)'} @[ IoU=${iou.padEnd(9)} | area=${area.padStart(6)} | maxDets=${String(m).padStart(3)} ] = ${v.toFixed(3)}`;
  return [
    `${iouType}:`,
    line(true, '0.50:0.95', 'all', 100, s.AP),
    line(true, '0.50', 'all', md[2]!, s.AP50),
    line(true, '0.75', 'all', md[2]!, s.AP75),
    line(true, '0.50:0.95', 'small', md[2]!, s.APs),
    line(true, '0.50:0.95', 'medium', md[2]!, s.APm),
    line(true, '0.50:0.95', 'large', md[2]!, s.APl),
    line(false, '0.50:0.95', 'all', md[0]!, s.AR1),
    line(false, '0.50:0.95', 'all', md[1]!, s.AR10),
    line(false, '0.50:0.95', 'all', md[2]!, s.AR100),
    line(false, '0.50:0.95', 'small', md[2]!, s.ARs),
    line(false, '0.50:0.95', 'medium', md[2]!, s.ARm),
    line(false, '0.50:0.95', 'large', md[2]!, s.ARl),
  ];
}

export { cocoRleFromPolygon };
