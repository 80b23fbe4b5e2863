// Weighted Segments Fusion (mistag's TTA notebook): WBF on the boxes of several prediction sets
// (TTA passes or models), then per fused box the member masks are combined by vote, keeping pixels
// covered by at least max(1, floor(voteFraction * members)) masks, and cropped to the fused box.
// Members are tracked by index through WBF, so no member is lost to the notebook's lookup by
// rounded box coordinates.
import type { MaskCrop } from '../../structures/mask-crop';
import { tightenCrop } from '../../structures/mask-crop';
import { weightedBoxesFusion, type Box, type ConfType } from './wbf';

export interface PredictionSet {
  /** Pixel boxes [x1, y1, x2, y2] in the original image orientation. */
  boxes: Box[];
  scores: number[];
  labels: number[];
  masks: MaskCrop[];
}

export interface WsfOptions {
  imageWidth: number;
  imageHeight: number;
  iouThr?: number;
  /** Raw-score threshold per box (WBF skip_box_thr). */
  skipBoxThr?: number;
  weights?: number[];
  confType?: ConfType;
  /** Vote fraction; 0.5 as in the notebook. */
  voteFraction?: number;
  /** Fuse all labels together (the notebook passes all-ones labels); default true. */
  classAgnostic?: boolean;
}

export interface FusedInstance {
  box: Box;
  score: number;
  label: number;
  mask: MaskCrop;
  members: number;
}

export function weightedSegmentsFusion(sets: readonly PredictionSet[], opts: WsfOptions): FusedInstance[] {
  const W = opts.imageWidth;
  const H = opts.imageHeight;
  const agnostic = opts.classAgnostic ?? true;
  const norm = sets.map((s) => s.boxes.map(([x1, y1, x2, y2]) => [x1 / W, y1 / H, x2 / W, y2 / H]));
  const wbf = weightedBoxesFusion(
    norm,
    sets.map((s) => s.scores),
    sets.map((s) => (agnostic ? s.labels.map(() => 1) : s.labels)),
    { iouThr: opts.iouThr ?? 0.55, skipBoxThr: opts.skipBoxThr ?? 0, weights: opts.weights, confType: opts.confType ?? 'avg' },
  );
  const fraction = opts.voteFraction ?? 0.5;
  const out: FusedInstance[] = [];
  wbf.boxes.forEach((nb, i) => {
    const members = wbf.members[i]!;
    const need = Math.max(1, Math.floor(fraction * members.length));
    const x1 = Math.max(0, Math.floor(W * nb[0]));
    const y1 = Math.max(0, Math.floor(H * nb[1]));
    const x2 = Math.min(W, Math.floor(W * nb[2]));
    const y2 = Math.min(H, Math.floor(H * nb[3]));
    const cw = Math.max(0, x2 - x1);
    const ch = Math.max(0, y2 - y1);
    const votes = new Uint8Array(cw * ch);
    for (const m of members) {
      const mk = sets[m.model]!.masks[m.index]!;
      for (let y = Math.max(y1, mk.y0); y < Math.min(y2, mk.y0 + mk.height); y++) {
        for (let x = Math.max(x1, mk.x0); x < Math.min(x2, mk.x0 + mk.width); x++) {
          if (mk.data[(y - mk.y0) * mk.width + (x - mk.x0)]) votes[(y - y1) * cw + (x - x1)]!++;
        }
      }
    }
    const data = new Uint8Array(cw * ch);
    for (let p = 0; p < data.length; p++) data[p] = votes[p]! >= need ? 1 : 0;
    // the label: majority over members (ties -> smallest), from the original labels
    const counts = new Map<number, number>();
    for (const m of members) {
      const l = sets[m.model]!.labels[m.index]!;
      counts.set(l, (counts.get(l) ?? 0) + 1);
    }
    const label = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
    out.push({
      box: [nb[0] * W, nb[1] * H, nb[2] * W, nb[3] * H],
      score: wbf.scores[i]!,
      label,
      mask: tightenCrop({ imageWidth: W, imageHeight: H, x0: x1, y0: y1, width: cw, height: ch, data }),
      members: members.length,
    });
  });
  return out;
}
