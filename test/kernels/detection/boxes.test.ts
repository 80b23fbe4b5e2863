// Pairwise IoU, top-k and NMS / batched NMS against plain TypeScript references of torchvision's
// algorithms (in f32 arithmetic, as torchvision runs them) and against torchvision fixtures,
// including score ties and exact IoU ties at the threshold.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchedNms, boxIou, empty, fromArray, init, nms, nmsGpu, topkScores } from '../../../engine';
import { defineKernel, read, rw } from '../../../kernels/define-kernel';
import { NMS_EXACT_WGSL, nmsThresholdCode } from '../../../kernels/detection/boxes';
import { expectClose, Rng, testSeed } from '../../util';

beforeAll(async () => {
  await init();
});

const fr = Math.fround;

/** Stable descending order (ties by lower index). */
function order(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => (scores[b]! - scores[a]!) || a - b);
}

/** torchvision nms_kernel_impl in f32 arithmetic; optional classes = _batched_nms_vanilla. */
function refNms(boxes: Float32Array, scores: Float32Array, thr: number, classes?: ArrayLike<number>): number[] {
  const n = scores.length;
  const area = (i: number) => fr(fr(boxes[4 * i + 2]! - boxes[4 * i]!) * fr(boxes[4 * i + 3]! - boxes[4 * i + 1]!));
  const suppressed = new Uint8Array(n);
  const keep: number[] = [];
  const ord = order(scores);
  for (let a = 0; a < n; a++) {
    const i = ord[a]!;
    if (suppressed[i]) continue;
    keep.push(i);
    for (let b = a + 1; b < n; b++) {
      const j = ord[b]!;
      if (suppressed[j] || (classes && classes[i] !== classes[j])) continue;
      const w = Math.max(0, fr(Math.min(boxes[4 * i + 2]!, boxes[4 * j + 2]!) - Math.max(boxes[4 * i]!, boxes[4 * j]!)));
      const h = Math.max(0, fr(Math.min(boxes[4 * i + 3]!, boxes[4 * j + 3]!) - Math.max(boxes[4 * i + 1]!, boxes[4 * j + 1]!)));
      const inter = fr(w * h);
      const ovr = fr(inter / fr(fr(area(i) + area(j)) - inter));
      if (ovr > thr) suppressed[j] = 1;
    }
  }
  return keep;
}

/** Boxes on a coarse grid with quantised scores: many score ties and exact IoU ties. */
function tiedBoxes(rng: Rng, n: number, classes: number) {
  const boxes = new Float32Array(4 * n);
  const scores = new Float32Array(n);
  const idxs = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const x = rng.int(0, 30), y = rng.int(0, 30);
    boxes.set([x, y, x + rng.int(2, 10), y + rng.int(2, 10)], 4 * i);
    scores[i] = rng.int(0, 9) / 8;
    idxs[i] = rng.int(0, classes);
  }
  return { boxes, scores, idxs };
}

describe('boxIou', () => {
  it('matches the float64 pairwise IoU on odd sizes', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const mk = (n: number) => {
      const b = new Float32Array(4 * n);
      for (let i = 0; i < n; i++) {
        const x = rng.uniform(0, 20), y = rng.uniform(0, 20);
        b.set([x, y, x + rng.uniform(0.5, 10), y + rng.uniform(0.5, 10)], 4 * i);
      }
      return b;
    };
    const a = mk(7);
    const b = mk(13);
    const ref: number[] = [];
    for (let i = 0; i < 7; i++) for (let j = 0; j < 13; j++) {
      const w = Math.max(0, Math.min(a[4 * i + 2]!, b[4 * j + 2]!) - Math.max(a[4 * i]!, b[4 * j]!));
      const h = Math.max(0, Math.min(a[4 * i + 3]!, b[4 * j + 3]!) - Math.max(a[4 * i + 1]!, b[4 * j + 1]!));
      const ar = (a[4 * i + 2]! - a[4 * i]!) * (a[4 * i + 3]! - a[4 * i + 1]!);
      const br = (b[4 * j + 2]! - b[4 * j]!) * (b[4 * j + 3]! - b[4 * j + 1]!);
      ref.push((w * h) / (ar + br - w * h));
    }
    expectClose(await boxIou(fromArray(a, [7, 4]), fromArray(b, [13, 4])).data(), ref, { atol: 1e-6, rtol: 1e-5, what: `boxIou (seed ${seed})` });
  });
});

describe('topkScores', () => {
  it('descending with ties by lower index, odd n (padding), k > n clamps', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (const n of [1, 37, 300]) {
      const s = Float32Array.from({ length: n }, () => rng.int(0, 20) / 7);
      const k = Math.max(1, Math.floor(n / 3));
      const ord = order(s).slice(0, k);
      const r = topkScores(fromArray(s, [n]), k);
      expect(Array.from(await r.indices.data())).toEqual(ord);
      expect(Array.from(await r.values.data())).toEqual(ord.map((i) => s[i]!));
    }
    const r = topkScores(fromArray([3, 1, 2], [3]), 10);
    expect(Array.from(await r.indices.data())).toEqual([0, 2, 1]);
  });
});

describe('nms', () => {
  it('equals the torchvision algorithm with ties (random, several thresholds)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    // 4200 boxes: over 128 words of 32, the greedy pass's next larger bitmask.
    for (const [n, thr] of [[1, 0.5], [97, 0.5], [300, 0.3], [513, 0.7], [4200, 0.5]] as const) {
      const { boxes, scores } = tiedBoxes(rng, n, 1);
      const keep = await nms(fromArray(boxes, [n, 4]), fromArray(scores, [n]), thr);
      expect(Array.from(await keep.data()), `nms n=${n} thr=${thr} (seed ${seed})`).toEqual(refNms(boxes, scores, thr));
    }
  });

  it('batched NMS: class-mask and offset methods equal per-class NMS', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const n = 251;
    const { boxes, scores, idxs } = tiedBoxes(rng, n, 4);
    const ref = refNms(boxes, scores, 0.5, idxs);
    for (const method of ['class-mask', 'offset'] as const) {
      const keep = await batchedNms(fromArray(boxes, [n, 4]), fromArray(scores, [n]), fromArray(idxs, [n], 'i32'), 0.5, method);
      expect(Array.from(await keep.data()), `batched ${method} (seed ${seed})`).toEqual(ref);
    }
  });

  it('nmsGpu pads the keep list with -1 and reports the count without readback', async () => {
    const boxes = fromArray([0, 0, 10, 10, 1, 1, 10, 10, 20, 20, 30, 30], [3, 4]);
    const { keep, count } = nmsGpu(boxes, fromArray([0.9, 0.8, 0.7], [3]), 0.5);
    expect(Array.from(await keep.data())).toEqual([0, 2, -1]);
    expect(await count.item()).toBe(2);
  });

  it('handles the threshold as a double like torchvision (IoU exactly f32(0.6))', async () => {
    // IoU = 0.6 exactly in f32 arithmetic: inter 60, union 100. f32(0.6) > 0.6, so torchvision
    // (float IoU > double 0.6) suppresses it.
    const b = Float32Array.from([0, 0, 10, 10, 0, 0, 10, 6]);
    const ovr = fr(60 / fr(100 + 60 - 60));
    expect(ovr).toBe(fr(0.6));
    const keep = await nms(fromArray(b, [2, 4]), fromArray([0.9, 0.8], [2]), 0.6);
    expect(Array.from(await keep.data())).toEqual(refNms(b, Float32Array.from([0.9, 0.8]), 0.6));
    expect(Array.from(await keep.data())).toEqual([0]);
  });

  it('rejects bad shapes', () => {
    expect(() => nmsGpu(fromArray([0, 0, 1], [1, 3]), fromArray([1], [1]), 0.5)).toThrow(/\[N, 4\]/);
    expect(() => nmsGpu(fromArray([0, 0, 1, 1], [1, 4]), fromArray([1, 2], [2]), 0.5)).toThrow(/scores/);
  });
});

describe('exact IoU threshold test (no division on the GPU)', () => {
  // The kernel decides fl(inter / union) > threshold from the bits; the reference is JS's
  // double quotient rounded to f32, which is the correctly rounded f32 quotient (53 >= 2*24 + 2).
  const decide = defineKernel({
    name: 'test.nms_exact',
    bindings: { ab: read('vec2u'), out: rw('u32') },
    params: { n: 'u32', mid_m: 'u32', mid_e: 'i32', tie_up: 'u32' },
    code: () => /* wgsl */ `
${NMS_EXACT_WGSL}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x >= p.n) { return; }
  let c = ratio_vs_mid(bitcast<f32>(ab[id.x].x), bitcast<f32>(ab[id.x].y), p.mid_m, p.mid_e);
  out[id.x] = select(0u, 1u, c > 0 || (c == 0 && p.tie_up != 0u));
}`,
  });
  async function gpuDecisions(pairs: [number, number][], thr: number): Promise<number[]> {
    const code = nmsThresholdCode(thr);
    expect(code.mode, `threshold ${thr}`).toBe(0);
    const ab = fromArray(new Uint32Array(new Float32Array(pairs.flat()).buffer), [pairs.length, 2], 'u32');
    const out = empty([pairs.length], 'u32');
    const params = { n: pairs.length, mid_m: code.midM, mid_e: code.midE, tie_up: code.tieUp };
    decide.dispatch({}, { ab: ab.buffer, out: out.buffer }, params, Math.ceil(pairs.length / 64));
    const d = Array.from(await out.data());
    ab.dispose();
    out.dispose();
    return d;
  }

  it('agrees with the correctly rounded f32 quotient next to many thresholds', async () => {
    const rng = new Rng(testSeed());
    for (const thr of [0.5, 0.6, 0.7, 0.3, 0.1, 0.65, 1e-3, 0, 0.999, 1, 1.5, 2 ** -140, rng.uniform(0, 1)]) {
      const pairs: [number, number][] = [];
      for (let k = 0; k < 600; k++) {
        // union over many scales (subnormal to large), inter = union * thr nudged by a few ulps.
        const b = fr(rng.uniform(1, 2) * 2 ** Math.floor(rng.uniform(-130, 60)));
        let a = fr(b * thr);
        const bits = new Uint32Array(Float32Array.of(a).buffer);
        bits[0] = Math.max(0, bits[0]! + Math.floor(rng.uniform(-4, 5)));
        a = new Float32Array(bits.buffer)[0]!;
        if (k % 50 === 0) a = 0;
        pairs.push([a, b]);
      }
      const want = pairs.map(([a, b]) => (fr(a / b) > thr ? 1 : 0));
      expect(await gpuDecisions(pairs, thr), `threshold ${thr}`).toEqual(want);
    }
  });

  it('rounds an exact midpoint half to even, as f32 division does', async () => {
    // threshold 1.5 * 2^-149: T = 2^-148 (even mantissa), P = 2^-149, midpoint 3 * 2^-150.
    const thr = 1.5 * 2 ** -149;
    const code = nmsThresholdCode(thr);
    expect([code.midM, code.midE, code.tieUp]).toEqual([3, -150, true]);
    const pairs: [number, number][] = [[3 * 2 ** -140, 2 ** 10], [fr(2 ** -149 * 5), 2]];
    // 3 * 2^-150 rounds up to 2^-148 > thr; 5 * 2^-150 is a tie between 2^-148 (even) and 3 * 2^-149.
    expect(await gpuDecisions(pairs, thr)).toEqual(pairs.map(([a, b]) => (fr(a / b) > thr ? 1 : 0)));
    expect(pairs.map(([a, b]) => fr(a / b) > thr)).toEqual([true, true]);
  });

  it('encodes degenerate thresholds', () => {
    expect(nmsThresholdCode(Number.NaN).mode).toBe(1);
    expect(nmsThresholdCode(4e38).mode).toBe(1);
    expect(nmsThresholdCode(-0.5).mode).toBe(2);
    const c = nmsThresholdCode(0.6);
    expect(c.midM * 2 ** c.midE).toBe((fr(0.6) + new Float32Array(Uint32Array.of(new Uint32Array(Float32Array.of(0.6).buffer)[0]! - 1).buffer)[0]!) / 2);
  });
});

describe('torchvision parity (fixtures)', () => {
  const fx = JSON.parse(readFileSync(new URL('../../fixtures/detection/nms.json', import.meta.url), 'utf8'));
  it('nms and batched_nms kept indices identical', async () => {
    for (const c of fx.cases) {
      const boxes = fromArray(Float32Array.from(c.boxes), [c.n, 4]);
      const scores = fromArray(Float32Array.from(c.scores), [c.n]);
      const keep = await nms(boxes, scores, c.iou_threshold);
      expect(Array.from(await keep.data()), `nms n=${c.n}`).toEqual(c.nms_keep);
      const bkeep = Array.from(await (await batchedNms(boxes, scores, fromArray(Int32Array.from(c.idxs), [c.n], 'i32'), c.iou_threshold)).data());
      if (c.batched_path === 'coordinate_trick') {
        expect(bkeep, `batched_nms n=${c.n} (${c.batched_path})`).toEqual(c.batched_keep);
      } else {
        // torchvision's vanilla path ends with an UNSTABLE sort of the kept boxes by score, so the
        // order among equal scores is arbitrary there. Same kept set, same score sequence, and
        // ours orders ties by index.
        expect([...bkeep].sort((a, b) => a - b), `batched_nms n=${c.n} kept set`).toEqual([...c.batched_keep].sort((a: number, b: number) => a - b));
        expect(bkeep.map((i) => c.scores[i]), `batched_nms n=${c.n} score order`).toEqual(c.batched_keep.map((i: number) => c.scores[i]));
      }
    }
  });
  it('box_iou', async () => {
    const b = fx.box_iou;
    const out = boxIou(fromArray(Float32Array.from(b.boxes1), [b.boxes1.length / 4, 4]), fromArray(Float32Array.from(b.boxes2), [b.boxes2.length / 4, 4]));
    expectClose(await out.data(), b.iou, { atol: 1e-7, rtol: 1e-6, what: 'box_iou' });
  });
});

describe('sortScoresDescending', () => {
  it('puts NaN first (as torch.sort descending), then scores descending, ties by index', async () => {
    const { sortScoresDescending } = await import('../../../engine/ops/boxes');
    const scores = [0.5, NaN, 0.9, 0.5, -1, NaN, 0.9, 0];
    const { values, indices } = sortScoresDescending(fromArray(scores));
    expect(Array.from(await indices.data())).toEqual([1, 5, 2, 6, 0, 3, 7, 4]);
    const v = Array.from(await values.data());
    expect(v.slice(0, 2).every(Number.isNaN)).toBe(true);
    expect(v.slice(2)).toEqual([0.9, 0.9, 0.5, 0.5, 0, -1].map(Math.fround));
  });
});
