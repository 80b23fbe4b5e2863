// FCOS training targets, exactly as CenterMask2's `FCOSOutputs._get_ground_truth`,
// `compute_targets_for_locations` and `get_sample_region` (+ `compute_ctrness_targets` of
// `fcos_losses`).
//
// Computed on the CPU in plain TypeScript: ground truth arrives from the data loader on the CPU and
// the targets are inputs of the loss, not activations, so nothing is read back from the GPU. Every
// arithmetic step is rounded to float32 (Math.fround) in the same order as the PyTorch code, so
// comparisons against thresholds (centre region, size ranges) decide exactly as the original.
//
// Output order is the original's "level first": for each level, for each image, that level's
// locations row-major (L, N, H, W from slowest to fastest), the order in which the loss flattens
// the head outputs.

/** One image's ground truth: boxes (x0, y0, x1, y1) flattened [G*4] and class indices [G]. */
export interface GtInstances {
  boxes: ArrayLike<number>;
  classes: ArrayLike<number>;
}

export interface FcosTargetOptions {
  numClasses: number;
  /** FPN strides per level (default [8, 16, 32, 64, 128]). */
  strides?: readonly number[];
  /** MODEL.FCOS.SIZES_OF_INTEREST: the inner bounds (default [64, 128, 256, 512]). */
  sizesOfInterest?: readonly number[];
  /** MODEL.FCOS.CENTER_SAMPLE (default true). */
  centerSample?: boolean;
  /** MODEL.FCOS.POS_RADIUS (default 1.5). */
  radius?: number;
}

export interface FcosTargets {
  numClasses: number;
  numImages: number;
  /** Locations per level (per image). */
  numLocPerLevel: number[];
  strides: number[];
  /** [M], M = N * sum(numLocPerLevel), level-first; `numClasses` = background. */
  labels: Int32Array;
  /** [M * 4]: (l, t, r, b) / stride of the assigned GT (meaningful at positives only). */
  regTargets: Float32Array;
  /** Flat indices of the positives, ascending. */
  posIndex: Int32Array;
  /** Centerness target of each positive: sqrt(min(l,r)/max(l,r) * min(t,b)/max(t,b)). */
  ctrnessTargets: Float32Array;
  numPos: number;
  /** Sum of the centerness targets, in float32. */
  ctrnessTargetSum: number;
}

/** CenterMask2's INF (area of "no GT" and the open upper size bound). */
export const FCOS_INF = 100000000;
export const FCOS_DEFAULT_STRIDES = [8, 16, 32, 64, 128] as const;
export const FCOS_DEFAULT_SIZES_OF_INTEREST = [64, 128, 256, 512] as const;

const f = Math.fround;

/** [[-1, s0], [s0, s1], ..., [s_last, INF]] (FCOS.__init__). */
export function sizeRanges(sizesOfInterest: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  let prev = -1;
  for (const s of sizesOfInterest) {
    out.push([prev, s]);
    prev = s;
  }
  out.push([prev, FCOS_INF]);
  return out;
}

function checkGt(gt: GtInstances, image: number, numClasses: number): number {
  const g = gt.classes.length;
  if (gt.boxes.length !== g * 4) {
    throw new Error(`computeFcosTargets: image ${image} has ${g} classes but ${gt.boxes.length} box values (expected ${g * 4})`);
  }
  for (let i = 0; i < g; i++) {
    const c = gt.classes[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new Error(`computeFcosTargets: image ${image} GT ${i} has class ${c}, expected an integer in [0, ${numClasses})`);
    }
  }
  return g;
}

/**
 * Labels and regression targets for every location of every image, plus the positives' indices
 * and centerness targets. `locations` are per level flat (x, y) arrays (computeLocations).
 */
export function computeFcosTargets(locations: readonly Float32Array[], gts: readonly GtInstances[], opts: FcosTargetOptions): FcosTargets {
  const K = opts.numClasses;
  if (!Number.isInteger(K) || K <= 0) throw new Error(`computeFcosTargets: numClasses must be a positive integer, got ${K}`);
  const strides = [...(opts.strides ?? FCOS_DEFAULT_STRIDES)];
  const ranges = sizeRanges(opts.sizesOfInterest ?? FCOS_DEFAULT_SIZES_OF_INTEREST);
  const centerSample = opts.centerSample ?? true;
  const radius = opts.radius ?? 1.5;
  const L = locations.length;
  if (strides.length !== L) throw new Error(`computeFcosTargets: ${L} location levels but ${strides.length} strides`);
  if (ranges.length !== L) throw new Error(`computeFcosTargets: ${L} levels but ${ranges.length} size ranges (sizesOfInterest needs ${L - 1} values)`);
  locations.forEach((loc, l) => {
    if (loc.length % 2) throw new Error(`computeFcosTargets: level ${l} locations must be (x, y) pairs, got ${loc.length} values`);
  });
  const numLocPerLevel = locations.map((loc) => loc.length / 2);
  const perImage = numLocPerLevel.reduce((a, b) => a + b, 0);
  const N = gts.length;
  const M = N * perImage;
  const labels = new Int32Array(M);
  const regTargets = new Float32Array(M * 4);

  // Start of (level, image) in the level-first output.
  const levelStart: number[] = [];
  let acc = 0;
  for (let l = 0; l < L; l++) {
    levelStart.push(acc);
    acc += N * numLocPerLevel[l]!;
  }

  for (let im = 0; im < N; im++) {
    const gt = gts[im]!;
    const G = checkGt(gt, im, K);
    const bx = Float32Array.from(gt.boxes);
    // detectron2 Boxes.area(): (x1 - x0) * (y1 - y0) in float32.
    const area = new Float32Array(G);
    const cx = new Float32Array(G);
    const cy = new Float32Array(G);
    for (let g = 0; g < G; g++) {
      area[g] = f(f(bx[4 * g + 2]! - bx[4 * g]!) * f(bx[4 * g + 3]! - bx[4 * g + 1]!));
      cx[g] = f(f(bx[4 * g]! + bx[4 * g + 2]!) / 2);
      cy[g] = f(f(bx[4 * g + 1]! + bx[4 * g + 3]!) / 2);
    }
    // get_sample_region returns "inside nothing" when the first GT's centre x sums to 0 (a quirk
    // of its "no gt" test), so the whole image is background.
    const noSamples = centerSample && G > 0 && cx[0] === 0;

    for (let l = 0; l < L; l++) {
      const loc = locations[l]!;
      const s = strides[l]!;
      const rs = f(s * radius);
      const lo = f(ranges[l]![0]);
      const hi = f(ranges[l]![1]);
      const base = levelStart[l]! + im * numLocPerLevel[l]!;
      for (let q = 0; q < numLocPerLevel[l]!; q++) {
        const x = loc[2 * q]!;
        const y = loc[2 * q + 1]!;
        let best = FCOS_INF;
        let bestIdx = 0;
        for (let g = 0; g < G; g++) {
          const x0 = bx[4 * g]!;
          const y0 = bx[4 * g + 1]!;
          const x1 = bx[4 * g + 2]!;
          const y1 = bx[4 * g + 3]!;
          const lft = f(x - x0);
          const top = f(y - y0);
          const rgt = f(x1 - x);
          const bot = f(y1 - y);
          let inside: boolean;
          if (!centerSample) inside = Math.min(lft, top, rgt, bot) > 0;
          else if (noSamples) inside = false;
          else {
            // The centre region cx +- radius*stride, clipped to the GT box.
            const xmin = f(cx[g]! - rs);
            const ymin = f(cy[g]! - rs);
            const xmax = f(cx[g]! + rs);
            const ymax = f(cy[g]! + rs);
            const rx0 = xmin > x0 ? xmin : x0;
            const ry0 = ymin > y0 ? ymin : y0;
            const rx1 = xmax > x1 ? x1 : xmax;
            const ry1 = ymax > y1 ? y1 : ymax;
            inside = Math.min(f(x - rx0), f(y - ry0), f(rx1 - x), f(ry1 - y)) > 0;
          }
          const maxReg = Math.max(lft, top, rgt, bot);
          const cared = maxReg >= lo && maxReg <= hi;
          const a = inside && cared ? area[g]! : FCOS_INF;
          // torch.min(dim) keeps the first index among equal minima.
          if (a < best) {
            best = a;
            bestIdx = g;
          }
        }
        const o = base + q;
        labels[o] = G === 0 || best === FCOS_INF ? K : gt.classes[bestIdx]!;
        if (G > 0) {
          const x0 = bx[4 * bestIdx]!;
          const y0 = bx[4 * bestIdx + 1]!;
          const x1 = bx[4 * bestIdx + 2]!;
          const y1 = bx[4 * bestIdx + 3]!;
          regTargets[4 * o] = f(f(x - x0) / s);
          regTargets[4 * o + 1] = f(f(y - y0) / s);
          regTargets[4 * o + 2] = f(f(x1 - x) / s);
          regTargets[4 * o + 3] = f(f(y1 - y) / s);
        }
      }
    }
  }

  const pos: number[] = [];
  for (let i = 0; i < M; i++) if (labels[i] !== K) pos.push(i);
  const posIndex = Int32Array.from(pos);
  const ctrnessTargets = new Float32Array(pos.length);
  let ctrSum = 0;
  pos.forEach((i, p) => {
    const [lft, top, rgt, bot] = [regTargets[4 * i]!, regTargets[4 * i + 1]!, regTargets[4 * i + 2]!, regTargets[4 * i + 3]!];
    const lr = f(Math.min(lft, rgt) / Math.max(lft, rgt));
    const tb = f(Math.min(top, bot) / Math.max(top, bot));
    ctrnessTargets[p] = f(Math.sqrt(f(lr * tb)));
    ctrSum += ctrnessTargets[p]!;
  });
  return {
    numClasses: K,
    numImages: N,
    numLocPerLevel,
    strides,
    labels,
    regTargets,
    posIndex,
    ctrnessTargets,
    numPos: pos.length,
    ctrnessTargetSum: f(ctrSum),
  };
}
