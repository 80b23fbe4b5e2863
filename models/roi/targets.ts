// Training targets of CenterMask2's ROI heads, on the CPU (the proposal boxes are already host
// arrays after FCOS's NMS, and the GT polygons never leave the host; Detectron2 does the same on
// the CPU under no_grad):
//   - `labelAndSampleProposals`: GT boxes appended to the proposals, pairwise IoU, Matcher
//     (IoU >= threshold -> foreground, allow_low_quality_matches = False), subsample_labels;
//   - `maskTargets`: PolygonMasks.crop_and_resize (shift by the box origin, scale by
//     size / max(w, 0.1), COCO-rasterise) and CenterMask2's MaskIoU area ratio.
// Arithmetic follows the original's dtypes: boxes are float32 tensors there (Math.fround), polygon
// coordinates and areas float64.
import { Rng } from '../../runtime/rng';
import { pairwiseIou } from '../../structures/boxes';
import type { MaskCrop } from '../../structures/mask-crop';
import { type InstancePolygons, polygonsArea, polygonsToBitmask, summedPolygonRasterArea } from '../../structures/polygons';

const f = Math.fround;

/** Ground truth of one image: masks as polygons (PolygonMasks) or as bitmasks (BitMasks). */
export interface GtInstances {
  /** [M * 4] x0, y0, x1, y1 (input-image pixels). */
  boxes: Float32Array;
  /** [M] class indices in [0, numClasses). */
  classes: ArrayLike<number>;
  /** [M] polygons of each instance (INPUT.MASK_FORMAT polygon). */
  polygons?: readonly InstancePolygons[];
  /** [M] bitmask of each instance (INPUT.MASK_FORMAT bitmask): a detectron2 BitMasks row, kept
   *  inside the instance's box (pixels outside it are 0). */
  masks?: readonly MaskCrop[];
}

/** The GT mask of instance i, whichever form the GT carries. */
export type GtMask = { polygons: InstancePolygons } | { bitmask: MaskCrop };

export function gtMaskOf(gt: GtInstances, i: number): GtMask {
  if (gt.masks) return { bitmask: gt.masks[i]! };
  return { polygons: gt.polygons![i]! };
}

/**
 * detectron2 Matcher with thresholds [t] and labels [0, 1], no low-quality matches: for each
 * proposal (column of the [numGt, numProposals] IoU matrix) the best GT (first on ties, as
 * torch.max) and label 1 when its IoU >= t. No GT: every proposal gets GT 0 and label 0.
 */
export function matchProposals(iou: Float32Array, numGt: number, numProposals: number, threshold = 0.5): { matchedIdx: Int32Array; labels: Int8Array } {
  if (iou.length !== numGt * numProposals) throw new Error(`matchProposals: IoU matrix has ${iou.length} values, expected ${numGt} x ${numProposals}`);
  const matchedIdx = new Int32Array(numProposals);
  const labels = new Int8Array(numProposals);
  if (numGt === 0) return { matchedIdx, labels };
  for (let p = 0; p < numProposals; p++) {
    let best = iou[p]!;
    let arg = 0;
    for (let g = 1; g < numGt; g++) {
      const v = iou[g * numProposals + p]!;
      if (v > best) {
        best = v;
        arg = g;
      }
    }
    matchedIdx[p] = arg;
    labels[p] = best >= threshold ? 1 : 0;
  }
  return { matchedIdx, labels };
}

function randomSubset(items: number[], k: number, rng: Rng): number[] {
  if (k >= items.length) return items.slice();
  const a = items.slice();
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(0, a.length - i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, k).sort((x, y) => x - y);
}

/**
 * detectron2 `subsample_labels`: at most numSamples * positiveFraction foreground (label not -1
 * and not bgLabel), the rest background. When every candidate of a kind fits it is kept in index
 * order; otherwise a random subset is drawn from `rng` (PyTorch's randperm cannot be reproduced,
 * and only the choice of subset, never the order, changes the losses).
 */
export function subsampleLabels(labels: ArrayLike<number>, numSamples: number, positiveFraction: number, bgLabel: number, rng: Rng): { fg: number[]; bg: number[] } {
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l === bgLabel) neg.push(i);
    else if (l !== -1) pos.push(i);
  }
  const numPos = Math.min(pos.length, Math.trunc(numSamples * positiveFraction));
  const numNeg = Math.min(neg.length, numSamples - numPos);
  return { fg: randomSubset(pos, numPos, rng), bg: randomSubset(neg, numNeg, rng) };
}

export interface SampleOptions {
  numClasses: number;
  /** ROI_HEADS.BATCH_SIZE_PER_IMAGE (512). */
  batchSizePerImage?: number;
  /** ROI_HEADS.POSITIVE_FRACTION (0.25). */
  positiveFraction?: number;
  /** ROI_HEADS.IOU_THRESHOLDS[0] (0.5). */
  iouThreshold?: number;
  /** ROI_HEADS.PROPOSAL_APPEND_GT (true). */
  appendGt?: boolean;
  /** Draws the subsets when there are more candidates than places. */
  rng: Rng;
}

/** Proposals of one image chosen for training: foreground first (index order), then background. */
export interface SampledProposals {
  /** [S * 4] boxes (float32, unclipped). */
  boxes: Float32Array;
  /** [S] class per sample; numClasses = background. */
  gtClasses: Int32Array;
  /** [S] matched GT instance, -1 for background. */
  gtIndex: Int32Array;
  /** The first numFg samples are the foreground. */
  numFg: number;
  /** [S] row of each sample in proposals ++ GT boxes. */
  sourceIndex: Int32Array;
}

/** ROIHeads.label_and_sample_proposals for one image (CenterMask2: GT appended, then matched). */
export function labelAndSampleProposals(proposalBoxes: Float32Array, gt: GtInstances, opts: SampleOptions): SampledProposals {
  if (proposalBoxes.length % 4) throw new Error(`labelAndSampleProposals: proposal boxes must be [N * 4], got ${proposalBoxes.length} values`);
  const numGt = gt.boxes.length / 4;
  const numMasks = gt.masks ? gt.masks.length : (gt.polygons?.length ?? -1);
  if (gt.boxes.length % 4 || gt.classes.length !== numGt || numMasks !== numGt) {
    throw new Error(`labelAndSampleProposals: GT has ${gt.boxes.length / 4} boxes, ${gt.classes.length} classes and ${numMasks} masks; they must agree`);
  }
  const all = new Float32Array(proposalBoxes.length + ((opts.appendGt ?? true) ? gt.boxes.length : 0));
  all.set(proposalBoxes);
  if (opts.appendGt ?? true) all.set(gt.boxes, proposalBoxes.length);
  const n = all.length / 4;
  const { matchedIdx, labels } = matchProposals(pairwiseIou(gt.boxes, all), numGt, n, opts.iouThreshold ?? 0.5);
  const classes = new Int32Array(n);
  for (let i = 0; i < n; i++) classes[i] = labels[i] === 1 ? gt.classes[matchedIdx[i]!]! : opts.numClasses;
  const { fg, bg } = subsampleLabels(classes, opts.batchSizePerImage ?? 512, opts.positiveFraction ?? 0.25, opts.numClasses, opts.rng);
  const order = [...fg, ...bg];
  const out: SampledProposals = {
    boxes: new Float32Array(order.length * 4),
    gtClasses: new Int32Array(order.length),
    gtIndex: new Int32Array(order.length),
    numFg: fg.length,
    sourceIndex: Int32Array.from(order),
  };
  order.forEach((src, k) => {
    out.boxes.set(all.subarray(4 * src, 4 * src + 4), 4 * k);
    out.gtClasses[k] = classes[src]!;
    out.gtIndex[k] = k < fg.length ? matchedIdx[src]! : -1;
  });
  return out;
}

/**
 * detectron2 `rasterize_polygons_within_box`: the polygons shifted by the box origin, scaled by
 * size / max(w, 0.1) (float32 ratio, float64 coordinates, as numpy computes it) and rasterised
 * with the COCO API on a size x size grid. Row-major 0/1.
 */
export function rasterizePolygonsWithinBox(polygons: InstancePolygons, box: ArrayLike<number>, size: number): Uint8Array {
  const x0 = f(box[0]!);
  const y0 = f(box[1]!);
  const w = f(f(box[2]!) - x0);
  const h = f(f(box[3]!) - y0);
  // `mask_size / max(h, 0.1)`: a float32 scalar unless the Python float 0.1 wins.
  const ratioW = w >= 0.1 ? f(size / w) : size / 0.1;
  const ratioH = h >= 0.1 ? f(size / h) : size / 0.1;
  const scaled = polygons.map((p) => p.map((v, i) => (i % 2 === 0 ? (v - x0) * ratioW : (v - y0) * ratioH)));
  return polygonsToBitmask(scaled, size, size);
}

/**
 * CenterMask2's MaskIoU area ratio: the instance's polygons shifted to the box origin, each
 * rasterised on an int(box_h) x int(box_w) grid (the float sizes truncated, as the Cython size
 * argument does), pixel counts summed, divided by the shoelace area and clamped to [0, 1]. NaN
 * when the polygon area and the raster area are both 0 (the original's 0/0).
 */
export function maskIouRatio(polygons: InstancePolygons, box: ArrayLike<number>): number {
  const x0 = f(box[0]!);
  const y0 = f(box[1]!);
  const h = Math.max(0, Math.trunc(f(f(box[3]!) - y0)));
  const w = Math.max(0, Math.trunc(f(f(box[2]!) - x0)));
  const shifted = polygons.map((p) => p.map((v, i) => v - (i % 2 === 0 ? x0 : y0)));
  const ratio = summedPolygonRasterArea(shifted, h, w) / polygonsArea(polygons);
  return Number.isNaN(ratio) ? NaN : Math.min(Math.max(ratio, 0), 1);
}

/** Mask-head targets of the foreground ROIs (all images concatenated). */
export interface MaskTargets {
  /** [F * size * size] 0/1 as float32 (the BCE target). */
  targets: Float32Array;
  /** [F] clamped area ratios (float64). */
  ratios: Float64Array;
  /**
   * [F] the GT area in 28x28 units the MaskIoU union uses: sum(target) / max(ratio, 1e-10)
   * (float64); NaN where the ratio is NaN (that ROI's IoU target is NaN and it leaves the loss).
   */
  fullAreas: Float64Array;
}

/**
 * detectron2 `BitMasks.crop_and_resize` for one mask: ROIAlign((size, size), spatial_scale 1,
 * sampling_ratio 0 (adaptive: ceil(box side / size) samples per bin side), aligned=True) of the
 * 0/1 mask over the box, then >= 0.5. Row-major 0/1. Sampling follows torchvision's bilinear rule
 * on the whole image (zero beyond one pixel outside, clamped at the border); pixels outside the
 * stored box read 0.
 */
export function bitmaskCropAndResize(m: MaskCrop, box: ArrayLike<number>, size: number): Uint8Array {
  const H = m.imageHeight;
  const W = m.imageWidth;
  const at = (y: number, x: number) => {
    const yy = y - m.y0;
    const xx = x - m.x0;
    return yy >= 0 && yy < m.height && xx >= 0 && xx < m.width ? m.data[yy * m.width + xx]! : 0;
  };
  const bilinear = (y: number, x: number): number => {
    if (y < -1 || y > H || x < -1 || x > W) return 0;
    if (y <= 0) y = 0;
    if (x <= 0) x = 0;
    let yl = Math.trunc(y);
    let xl = Math.trunc(x);
    let yh: number;
    let xh: number;
    if (yl >= H - 1) {
      yh = yl = H - 1;
      y = yl;
    } else yh = yl + 1;
    if (xl >= W - 1) {
      xh = xl = W - 1;
      x = xl;
    } else xh = xl + 1;
    const ly = f(y - yl);
    const lx = f(x - xl);
    const hy = f(1 - ly);
    const hx = f(1 - lx);
    // torchvision's order: w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4, left to right.
    return f(f(f(f(f(hy * hx) * at(yl, xl)) + f(f(hy * lx) * at(yl, xh))) + f(f(ly * hx) * at(yh, xl))) + f(f(ly * lx) * at(yh, xh)));
  };
  const x0 = f(f(box[0]!) - 0.5);
  const y0 = f(f(box[1]!) - 0.5);
  const rw = f(f(f(box[2]!) - 0.5) - x0);
  const rh = f(f(f(box[3]!) - 0.5) - y0);
  const binW = f(rw / size);
  const binH = f(rh / size);
  const gridH = Math.max(Math.ceil(rh / size), 0);
  const gridW = Math.max(Math.ceil(rw / size), 0);
  const count = Math.max(gridH * gridW, 1);
  const out = new Uint8Array(size * size);
  for (let ph = 0; ph < size; ph++) {
    for (let pw = 0; pw < size; pw++) {
      let sum = 0;
      for (let iy = 0; iy < gridH; iy++) {
        const y = f(f(y0 + f(ph * binH)) + f(f((iy + 0.5) * binH) / gridH));
        for (let ix = 0; ix < gridW; ix++) {
          const x = f(f(x0 + f(pw * binW)) + f(f((ix + 0.5) * binW) / gridW));
          sum = f(sum + bilinear(y, x));
        }
      }
      out[ph * size + pw] = f(sum / count) >= 0.5 ? 1 : 0;
    }
  }
  return out;
}

/**
 * The MaskIoU area ratio for bitmask GT (CenterMask2 defines it only for polygons): the share of the
 * GT mask's pixels whose centre (col + 0.5, row + 0.5) lies inside the box [x0, x1) x [y0, y1).
 * NaN for an empty mask (0/0, as the polygon rule gives).
 */
export function bitmaskIouRatio(m: MaskCrop, box: ArrayLike<number>): number {
  let total = 0;
  let inside = 0;
  for (let y = 0; y < m.height; y++) {
    const cy = m.y0 + y + 0.5;
    const rowIn = cy >= box[1]! && cy < box[3]!;
    for (let x = 0; x < m.width; x++) {
      if (!m.data[y * m.width + x]) continue;
      total++;
      const cx = m.x0 + x + 0.5;
      if (rowIn && cx >= box[0]! && cx < box[2]!) inside++;
    }
  }
  return inside / total;
}

/** Targets for foreground ROIs: `boxes` [F * 4], `masks[r]` the matched GT's mask (polygons or bitmask). */
export function maskTargets(boxes: Float32Array, masks: readonly GtMask[], size: number): MaskTargets {
  const n = boxes.length / 4;
  if (masks.length !== n) throw new Error(`maskTargets: ${n} boxes but ${masks.length} masks`);
  const out: MaskTargets = { targets: new Float32Array(n * size * size), ratios: new Float64Array(n), fullAreas: new Float64Array(n) };
  for (let r = 0; r < n; r++) {
    const box = boxes.subarray(4 * r, 4 * r + 4);
    const gm = masks[r]!;
    const bits = 'bitmask' in gm ? bitmaskCropAndResize(gm.bitmask, box, size) : rasterizePolygonsWithinBox(gm.polygons, box, size);
    let count = 0;
    for (let i = 0; i < bits.length; i++) {
      out.targets[r * size * size + i] = bits[i]!;
      count += bits[i]!;
    }
    const ratio = 'bitmask' in gm ? bitmaskIouRatio(gm.bitmask, box) : maskIouRatio(gm.polygons, box);
    out.ratios[r] = ratio;
    out.fullAreas[r] = count / Math.max(ratio, 1e-10);
    if (Number.isNaN(ratio)) out.fullAreas[r] = NaN;
  }
  return out;
}
