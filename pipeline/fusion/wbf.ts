// Weighted Boxes Fusion, a port of ensemble_boxes.weighted_boxes_fusion (ZFTurbo, v1.0.9) that
// reproduces its numbers: records and rescaling in float64, fused boxes in float32 exactly where
// numpy computes them in float32 (get_weighted_box; NumPy 2 promotion rules), the strict IoU > thr
// match against running fused boxes, per-conf_type rescaling and allows_overflow. Sorting follows
// numpy's argsort()[::-1]: descending, equal scores in reverse input order (what numpy's stable
// small-array sort gives; larger arrays with ties may order differently upstream).
// Unlike the reference, each fused box also reports its members, which WSF needs.

export type ConfType = 'avg' | 'max' | 'box_and_model_avg' | 'absent_model_aware_avg';
export const CONF_TYPES: readonly ConfType[] = ['avg', 'max', 'box_and_model_avg', 'absent_model_aware_avg'];

export type Box = [number, number, number, number];

export interface WbfOptions {
  weights?: number[];
  iouThr?: number;
  skipBoxThr?: number;
  confType?: ConfType;
  allowsOverflow?: boolean;
  /** Receives the reference's warnings (swapped/clipped/zero-area boxes, bad weights). */
  warn?: (msg: string) => void;
}

export interface WbfMember {
  model: number;
  /** Index of the box in that model's input list. */
  index: number;
  weightedScore: number;
}

export interface WbfResult {
  boxes: Box[];
  scores: number[];
  labels: number[];
  /** Members of each fused box, same order as boxes. */
  members: WbfMember[][];
}

export class WbfInputError extends Error {}

/** [label, weighted score, weight, model, x1, y1, x2, y2] as in the reference, plus the source index. */
interface Rec {
  v: number[];
  index: number;
}

const f32 = Math.fround;

/** Indices by descending key, equal keys in reverse input order (numpy stable argsort()[::-1]). */
function descendingOrder(keys: readonly number[]): number[] {
  return keys
    .map((_, i) => i)
    .sort((a, b) => keys[a]! - keys[b]! || a - b)
    .reverse();
}

function prefilter(
  boxes: readonly (readonly number[])[][],
  scores: readonly (readonly number[])[],
  labels: readonly (readonly number[])[],
  weights: readonly number[],
  thr: number,
  warn: (m: string) => void,
): Map<number, Rec[]> {
  const out = new Map<number, Rec[]>();
  for (let t = 0; t < boxes.length; t++) {
    if (boxes[t]!.length !== scores[t]!.length) {
      throw new WbfInputError(`model ${t}: ${boxes[t]!.length} boxes but ${scores[t]!.length} scores`);
    }
    if (boxes[t]!.length !== labels[t]!.length) {
      throw new WbfInputError(`model ${t}: ${boxes[t]!.length} boxes but ${labels[t]!.length} labels`);
    }
    for (let j = 0; j < boxes[t]!.length; j++) {
      const score = scores[t]![j]!;
      if (score < thr) continue;
      const label = Math.trunc(labels[t]![j]!);
      const bp = boxes[t]![j]!;
      let [x1, y1, x2, y2] = [bp[0]!, bp[1]!, bp[2]!, bp[3]!];
      if (x2 < x1) {
        warn('X2 < X1 value in box. Swap them.');
        [x1, x2] = [x2, x1];
      }
      if (y2 < y1) {
        warn('Y2 < Y1 value in box. Swap them.');
        [y1, y2] = [y2, y1];
      }
      const clip = (v: number, name: string) => {
        if (v < 0) {
          warn(`${name} < 0 in box. Set it to 0.`);
          return 0;
        }
        if (v > 1) {
          warn(`${name} > 1 in box. Set it to 1. Check that you normalize boxes in [0, 1] range.`);
          return 1;
        }
        return v;
      };
      x1 = clip(x1, 'X1');
      x2 = clip(x2, 'X2');
      y1 = clip(y1, 'Y1');
      y2 = clip(y2, 'Y2');
      if ((x2 - x1) * (y2 - y1) === 0) {
        warn(`Zero area box skipped: [${bp.join(', ')}].`);
        continue;
      }
      const rec: Rec = { v: [label, score * weights[t]!, weights[t]!, t, x1, y1, x2, y2], index: j };
      let list = out.get(label);
      if (!list) out.set(label, (list = []));
      list.push(rec);
    }
  }
  for (const [label, list] of out) {
    const order = descendingOrder(list.map((r) => r.v[1]!));
    out.set(label, order.map((i) => list[i]!));
  }
  return out;
}

/** get_weighted_box: float32 accumulation of score-weighted coordinates. */
function weightedBox(members: readonly Rec[], confType: ConfType): number[] {
  const box = [0, 0, 0, 0, 0, 0, 0, 0];
  let conf = 0;
  let maxConf = -Infinity;
  let w = 0;
  for (const { v } of members) {
    for (let c = 4; c < 8; c++) box[c] = f32(box[c]! + v[1]! * v[c]!);
    conf += v[1]!;
    if (v[1]! > maxConf) maxConf = v[1]!;
    w += v[2]!;
  }
  box[0] = f32(members[0]!.v[0]!);
  box[1] = f32(confType === 'max' ? maxConf : conf / members.length);
  box[2] = f32(w);
  box[3] = -1;
  for (let c = 4; c < 8; c++) box[c] = f32(box[c]! / conf);
  return box;
}

function iou(a: readonly number[], b: readonly number[]): number {
  // find_matching_box_quickly's bb_iou_array on [x1,y1,x2,y2] (offset 4 in the records)
  const xA = Math.max(a[4]!, b[4]!);
  const yA = Math.max(a[5]!, b[5]!);
  const xB = Math.min(a[6]!, b[6]!);
  const yB = Math.min(a[7]!, b[7]!);
  const inter = Math.max(xB - xA, 0) * Math.max(yB - yA, 0);
  const aArea = (a[6]! - a[4]!) * (a[7]! - a[5]!);
  const bArea = (b[6]! - b[4]!) * (b[7]! - b[5]!);
  return inter / (aArea + bArea - inter);
}

export function weightedBoxesFusion(
  boxesList: readonly (readonly number[])[][],
  scoresList: readonly (readonly number[])[],
  labelsList: readonly (readonly number[])[],
  opts: WbfOptions = {},
): WbfResult {
  const warn = opts.warn ?? (() => {});
  const iouThr = opts.iouThr ?? 0.55;
  const skip = opts.skipBoxThr ?? 0;
  const confType = opts.confType ?? 'avg';
  if (!CONF_TYPES.includes(confType)) {
    throw new WbfInputError(`unknown conf_type "${confType}"; expected one of ${CONF_TYPES.join(', ')}`);
  }
  if (scoresList.length !== boxesList.length || labelsList.length !== boxesList.length) {
    throw new WbfInputError(
      `${boxesList.length} models of boxes, ${scoresList.length} of scores, ${labelsList.length} of labels`,
    );
  }
  let weights = opts.weights ?? boxesList.map(() => 1);
  if (weights.length !== boxesList.length) {
    warn(`Warning: incorrect number of weights ${weights.length}. Must be: ${boxesList.length}. Set weights equal to 1.`);
    weights = boxesList.map(() => 1);
  }
  const wSum = weights.reduce((a, b) => a + b, 0);
  const wMax = Math.max(...weights);

  const filtered = prefilter(boxesList, scoresList, labelsList, weights, skip, warn);
  const all: { v: number[]; members: Rec[] }[] = [];
  for (const recs of filtered.values()) {
    const fused: number[][] = [];
    const clusters: Rec[][] = [];
    for (const rec of recs) {
      let best = -1;
      let bestIou = -Infinity;
      for (let i = 0; i < fused.length; i++) {
        const v = fused[i]![0] !== rec.v[0] ? -1 : iou(fused[i]!, rec.v);
        if (v > bestIou) {
          bestIou = v;
          best = i;
        }
      }
      if (best >= 0 && bestIou > iouThr) {
        clusters[best]!.push(rec);
        fused[best] = weightedBox(clusters[best]!, confType);
      } else {
        clusters.push([rec]);
        fused.push(rec.v.slice());
      }
    }
    for (let i = 0; i < clusters.length; i++) {
      const members = clusters[i]!;
      const wb = fused[i]!;
      const n = members.length;
      const models = [...new Set(members.map((m) => m.v[3]!))].sort((a, b) => a - b);
      if (confType === 'box_and_model_avg') {
        wb[1] = (wb[1]! * n) / wb[2]!;
        // np.unique(..., return_index) takes the first member of each model, in model order
        let modelW = 0;
        for (const m of models) modelW += members.find((r) => r.v[3] === m)!.v[2]!;
        wb[1] = (wb[1]! * modelW) / wSum;
      } else if (confType === 'absent_model_aware_avg') {
        let absent = 0;
        for (let t = 0; t < weights.length; t++) if (!models.includes(t)) absent += weights[t]!;
        wb[1] = (wb[1]! * n) / (wb[2]! + absent);
      } else if (confType === 'max') {
        wb[1] = wb[1]! / wMax;
      } else if (!opts.allowsOverflow) {
        wb[1] = (wb[1]! * Math.min(weights.length, n)) / wSum;
      } else {
        wb[1] = (wb[1]! * n) / wSum;
      }
      all.push({ v: wb, members });
    }
  }
  const order = descendingOrder(all.map((a) => a.v[1]!));
  return {
    boxes: order.map((i) => all[i]!.v.slice(4, 8) as Box),
    scores: order.map((i) => all[i]!.v[1]!),
    labels: order.map((i) => all[i]!.v[0]!),
    members: order.map((i) => all[i]!.members.map((r) => ({ model: r.v[3]!, index: r.index, weightedScore: r.v[1]! }))),
  };
}
