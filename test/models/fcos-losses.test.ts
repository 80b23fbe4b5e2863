// FCOS targets and losses on small synthetic batches (two images, two levels, random GT):
// - targets against a direct float64 transcription of compute_targets_for_locations /
//   get_sample_region (integer GT coordinates, so float32 and float64 agree exactly), the
//   level-first order for N > 1, an image without GT, and the "first GT centred at x = 0" quirk;
// - the three losses against a float64 reference of fcos_losses, and their gradients w.r.t. every
//   head output against finite differences of that reference.
import { beforeAll, describe, expect, it } from 'vitest';
import { add, backward, fromArray, init, mulScalar, scopeAsync, type Tensor } from '../../engine';
import { computeLocations } from '../../models/fcos/locations';
import { computeFcosTargets, type FcosTargets, type GtInstances } from '../../models/fcos/targets';
import { fcosLosses } from '../../models/fcos/losses';
import { expectClose, numericGrad, Rng, testSeed } from '../util';

beforeAll(async () => {
  await init();
});

const STRIDES = [8, 16];
const SHAPES = [
  { height: 5, width: 6 },
  { height: 3, width: 3 },
];
const SIZES = [24]; // ranges [-1, 24], [24, INF]
const K = 3;

function randomGts(rng: Rng, count: number): GtInstances {
  const boxes: number[] = [];
  const classes: number[] = [];
  for (let g = 0; g < count; g++) {
    const x0 = rng.int(-4, 40);
    const y0 = rng.int(-4, 32);
    boxes.push(x0, y0, x0 + rng.int(6, 44), y0 + rng.int(6, 36));
    classes.push(rng.int(0, K));
  }
  return { boxes, classes };
}

/** Float64 transcription of the original's target assignment for one image (level-major rows). */
function referenceTargets(locs: Float32Array[], gt: GtInstances) {
  const ranges = [[-1, 24], [24, 1e8]];
  const out: { label: number; reg: number[] }[][] = [];
  const G = gt.classes.length;
  const cx0 = G > 0 ? (gt.boxes[0]! + gt.boxes[2]!) / 2 : 1;
  locs.forEach((loc, l) => {
    const s = STRIDES[l]!;
    const rows: { label: number; reg: number[] }[] = [];
    for (let q = 0; q < loc.length / 2; q++) {
      const [x, y] = [loc[2 * q]!, loc[2 * q + 1]!];
      const cands: { area: number; g: number }[] = [];
      for (let g = 0; g < G; g++) {
        const [x0, y0, x1, y1] = [0, 1, 2, 3].map((k) => gt.boxes[4 * g + k]!) as [number, number, number, number];
        const [cx, cy] = [(x0 + x1) / 2, (y0 + y1) / 2];
        const r = 1.5 * s;
        const region = [Math.max(cx - r, x0), Math.max(cy - r, y0), Math.min(cx + r, x1), Math.min(cy + r, y1)];
        const inside = cx0 !== 0 && x - region[0]! > 0 && y - region[1]! > 0 && region[2]! - x > 0 && region[3]! - y > 0;
        const m = Math.max(x - x0, y - y0, x1 - x, y1 - y);
        if (inside && m >= ranges[l]![0]! && m <= ranges[l]![1]!) cands.push({ area: (x1 - x0) * (y1 - y0), g });
      }
      cands.sort((a, b) => a.area - b.area || a.g - b.g);
      const g = cands[0]?.g ?? 0;
      const reg = G ? [x - gt.boxes[4 * g]!, y - gt.boxes[4 * g + 1]!, gt.boxes[4 * g + 2]! - x, gt.boxes[4 * g + 3]! - y].map((v) => v / s) : [0, 0, 0, 0];
      rows.push({ label: cands.length ? gt.classes[g]! : K, reg });
    }
    out.push(rows);
  });
  return out;
}

function targetsFor(gts: GtInstances[]): FcosTargets {
  return computeFcosTargets(computeLocations(SHAPES, STRIDES), gts, { numClasses: K, strides: STRIDES, sizesOfInterest: SIZES });
}

describe('FCOS targets (synthetic)', () => {
  it('match a float64 transcription, level-first over two images', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const locs = computeLocations(SHAPES, STRIDES);
    for (let trial = 0; trial < 20; trial++) {
      const gts = [randomGts(rng, rng.int(1, 5)), randomGts(rng, rng.int(1, 5))];
      const t = targetsFor(gts);
      const refs = gts.map((gt) => referenceTargets(locs, gt));
      const labels: number[] = [];
      const regs: number[] = [];
      for (let l = 0; l < STRIDES.length; l++) {
        for (const ref of refs) {
          for (const row of ref[l]!) {
            labels.push(row.label);
            regs.push(...row.reg);
          }
        }
      }
      expect(Array.from(t.labels), `seed ${seed} trial ${trial}: labels`).toEqual(labels);
      const pos = labels.flatMap((v, i) => (v !== K ? [i] : []));
      expect(Array.from(t.posIndex), `seed ${seed}: pos_index`).toEqual(pos);
      expect(pos.map((i) => Array.from(t.regTargets.subarray(4 * i, 4 * i + 4))), `seed ${seed}: reg targets`).toEqual(pos.map((i) => regs.slice(4 * i, 4 * i + 4)));
      const ctr = pos.map((i) => {
        const [l, tp, r, b] = regs.slice(4 * i, 4 * i + 4) as [number, number, number, number];
        return Math.sqrt((Math.min(l, r) / Math.max(l, r)) * (Math.min(tp, b) / Math.max(tp, b)));
      });
      expectClose(t.ctrnessTargets, ctr, { atol: 0, rtol: 2e-7, what: `seed ${seed}: centerness targets` });
    }
  });

  it('the smallest GT wins, an image without GT is background, and the x = 0 centre quirk', () => {
    // Two GTs around location (28, 20) of the stride-8 level; the smaller one (class 2) wins.
    const big = [12, 4, 44, 36];
    const small = [20, 12, 36, 28];
    const t = targetsFor([{ boxes: [...big, ...small], classes: [1, 2] }, { boxes: [], classes: [] }]);
    const q = 2 * 6 + 3; // row 2, column 3 of the 5x6 level -> (28, 20)
    expect(t.labels[q]).toBe(2);
    expect(Array.from(t.regTargets.subarray(4 * q, 4 * q + 4))).toEqual([1, 1, 1, 1]);
    // The second image's rows of level 0 (right after the first image's 30) are all background.
    expect(Array.from(t.labels.subarray(30, 60)).every((v) => v === K)).toBe(true);
    // First GT centred at x = 0: the original's sample region reports nothing inside.
    const quirk = targetsFor([{ boxes: [-10, 0, 10, 20, ...small], classes: [0, 2] }]);
    expect(quirk.numPos).toBe(0);
    expect(() => targetsFor([{ boxes: [0, 0, 4], classes: [0] }])).toThrow(/box values/);
    expect(() => targetsFor([{ boxes: [0, 0, 4, 4], classes: [K] }])).toThrow(/class 3/);
  });
});

// ---- losses: float64 reference ------------------------------------------------------------------

interface HeadArrays {
  logits: Float64Array[]; // per level [N, K, H, W]
  reg: Float64Array[]; // per level [N, 4, H, W]
  ctr: Float64Array[]; // per level [N, 1, H, W]
}

/** Level-first rows (l, n, h, w) of channel c of per-level [N, C, H, W] arrays. */
function flatRows(levels: Float64Array[], C: number, N: number): number[][] {
  const rows: number[][] = [];
  levels.forEach((a, l) => {
    const hw = SHAPES[l]!.height * SHAPES[l]!.width;
    for (let n = 0; n < N; n++) for (let p = 0; p < hw; p++) rows.push(Array.from({ length: C }, (_, c) => a[(n * C + c) * hw + p]!));
  });
  return rows;
}

const softplusNeg = (x: number) => Math.log1p(Math.exp(-Math.abs(x))); // log(1 + e^-|x|)
const bce = (x: number, t: number) => Math.max(x, 0) - x * t + softplusNeg(x);

function referenceLosses(h: HeadArrays, t: FcosTargets, N: number) {
  const logits = flatRows(h.logits, K, N);
  const reg = flatRows(h.reg, 4, N);
  const ctr = flatRows(h.ctr, 1, N).map((r) => r[0]!);
  const numPos = Math.max(t.numPos, 1);
  let cls = 0;
  logits.forEach((row, i) =>
    row.forEach((x, c) => {
      const y = t.labels[i] === c ? 1 : 0;
      const p = 1 / (1 + Math.exp(-x));
      const pt = p * y + (1 - p) * (1 - y);
      cls += (0.25 * y + 0.75 * (1 - y)) * bce(x, y) * (1 - pt) ** 2;
    }),
  );
  let loc = 0;
  let ctrLoss = 0;
  let ctrSum = 0;
  t.posIndex.forEach((i, p) => {
    const [pl, pt, pr, pb] = reg[i]!;
    const [tl, tt, tr, tb] = Array.from(t.regTargets.subarray(4 * i, 4 * i + 4));
    const w = t.ctrnessTargets[p]!;
    const inter = (Math.min(pl!, tl!) + Math.min(pr!, tr!)) * (Math.min(pt!, tt!) + Math.min(pb!, tb!));
    const union = (pl! + pr!) * (pt! + pb!) + (tl! + tr!) * (tt! + tb!) - inter;
    const encl = (Math.max(pl!, tl!) + Math.max(pr!, tr!)) * (Math.max(pt!, tt!) + Math.max(pb!, tb!));
    const giou = (inter + 1) / (union + 1) - (encl - union) / encl;
    loc += w * (1 - giou);
    ctrSum += w;
    ctrLoss += bce(ctr[i]!, w);
  });
  return { cls: cls / numPos, loc: loc / Math.max(ctrSum, 1e-6), ctr: ctrLoss / numPos };
}

describe('FCOS losses (synthetic)', () => {
  it('match a float64 reference; gradients match finite differences of it', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const N = 2;
    let gts: GtInstances[] = [];
    let t: FcosTargets | undefined;
    for (let tries = 0; tries < 50 && !(t && t.numPos > 0); tries++) {
      gts = [randomGts(rng, 3), randomGts(rng, 2)];
      t = targetsFor(gts);
    }
    expect(t!.numPos, `seed ${seed}: synthetic GT gives positives`).toBeGreaterThan(0);
    const targets = t!;
    const sizes = SHAPES.map((s) => s.height * s.width);
    const h: HeadArrays = {
      logits: sizes.map((hw) => rng.normalArray(N * K * hw, 0, 2)),
      reg: sizes.map((hw) => rng.uniformArray(N * 4 * hw, 0.2, 3)),
      ctr: sizes.map((hw) => rng.normalArray(N * hw, 0, 1.5)),
    };
    // Round to f32 so the GPU and the reference see the same inputs.
    for (const arr of [...h.logits, ...h.reg, ...h.ctr]) arr.set(Float32Array.from(arr));
    const weights = { cls: 1, loc: 0.7, ctr: 1.3 };

    const gpu = await scopeAsync(async () => {
      const leaf = (a: Float64Array, c: number, l: number) => {
        const x = fromArray(Float32Array.from(a), [N, c, SHAPES[l]!.height, SHAPES[l]!.width]);
        x.requiresGrad = true;
        return x;
      };
      const pred = { logits: h.logits.map((a, l) => leaf(a, K, l)), bboxReg: h.reg.map((a, l) => leaf(a, 4, l)), ctrness: h.ctr.map((a, l) => leaf(a, 1, l)) };
      const losses = fcosLosses(pred, targets);
      const total = add(add(mulScalar(losses.loss_fcos_cls, weights.cls), mulScalar(losses.loss_fcos_loc, weights.loc)), mulScalar(losses.loss_fcos_ctr, weights.ctr));
      backward(total);
      const grads = async (ts: Tensor[]) => Promise.all(ts.map(async (x) => Array.from(await x.grad!.toArray())));
      return {
        cls: await losses.loss_fcos_cls.item(),
        loc: await losses.loss_fcos_loc.item(),
        ctr: await losses.loss_fcos_ctr.item(),
        gLogits: await grads(pred.logits),
        gReg: await grads(pred.bboxReg),
        gCtr: await grads(pred.ctrness),
      };
    });

    const ref = referenceLosses(h, targets, N);
    expectClose([gpu.cls, gpu.loc, gpu.ctr], [ref.cls, ref.loc, ref.ctr], { atol: 1e-6, rtol: 1e-5, what: `seed ${seed}: losses (cls, loc, ctr)` });

    // Finite differences of the weighted reference total, one head output array at a time.
    const total = (hh: HeadArrays) => {
      const r = referenceLosses(hh, targets, N);
      return weights.cls * r.cls + weights.loc * r.loc + weights.ctr * r.ctr;
    };
    for (const [name, key, got] of [['logits', 'logits', gpu.gLogits], ['bboxReg', 'reg', gpu.gReg], ['ctrness', 'ctr', gpu.gCtr]] as const) {
      h[key].forEach((arr, l) => {
        const fd = numericGrad((x) => total({ ...h, [key]: h[key].map((a, j) => (j === l ? x : a)) }), arr.slice());
        expectClose(got[l]!, fd, { atol: 1e-5, rtol: 1e-3, what: `seed ${seed}: d total / d ${name} level ${l}` });
      });
    }
  });

  it('with no positives: cls normalised by 1, loc and ctr zero', async () => {
    const t = targetsFor([{ boxes: [], classes: [] }]);
    const got = await scopeAsync(async () => {
      const mk = (c: number, l: number) => fromArray(new Float32Array(c * SHAPES[l]!.height * SHAPES[l]!.width).fill(0.5), [1, c, SHAPES[l]!.height, SHAPES[l]!.width]);
      const losses = fcosLosses({ logits: [mk(K, 0), mk(K, 1)], bboxReg: [mk(4, 0), mk(4, 1)], ctrness: [mk(1, 0), mk(1, 1)] }, t);
      return [await losses.loss_fcos_cls.item(), await losses.loss_fcos_loc.item(), await losses.loss_fcos_ctr.item()];
    });
    const p = 1 / (1 + Math.exp(-0.5));
    const perElement = 0.75 * bce(0.5, 0) * p * p;
    expectClose(got, [perElement * K * (30 + 9), 0, 0], { atol: 1e-6, rtol: 1e-5, what: 'no-positive losses' });
  });
});
