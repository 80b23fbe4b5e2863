// detector_postprocess: float32 scale / clip / drop-empty vs a float64 reference, and masks pasted
// into the clipped boxes vs a float64 grid_sample (bilinear, align_corners=False, zero padding)
// reference at threshold 0.5; the region-packed masks equal the full-image paste; score threshold
// and top-k select before pasting.
import { beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init, pasteMasksInImage } from '../../engine';
import { Rng, expectClose, testSeed } from '../util';
import { detectorPostprocess, postprocessBoxes, selectDetections } from '../../models/postprocess';

function refClip(boxes: ArrayLike<number>, sx: number, sy: number, h: number, w: number): { boxes: number[]; keep: number[] } {
  const out: number[] = [];
  const keep: number[] = [];
  for (let i = 0; i < boxes.length / 4; i++) {
    const b = [boxes[4 * i]! * sx, boxes[4 * i + 1]! * sy, boxes[4 * i + 2]! * sx, boxes[4 * i + 3]! * sy];
    const c = [Math.min(Math.max(b[0]!, 0), w), Math.min(Math.max(b[1]!, 0), h), Math.min(Math.max(b[2]!, 0), w), Math.min(Math.max(b[3]!, 0), h)];
    if (c[2]! - c[0]! > 0 && c[3]! - c[1]! > 0) {
      out.push(...c);
      keep.push(i);
    }
  }
  return { boxes: out, keep };
}

/** Detectron2 _do_paste_mask for one mask (float64): probability at every pixel of an h x w image. */
function refPaste(mask: ArrayLike<number>, m: number, box: number[], h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  const at = (y: number, x: number) => (y < 0 || y >= m || x < 0 || x >= m ? 0 : mask[y * m + x]!);
  for (let py = 0; py < h; py++) {
    for (let px = 0; px < w; px++) {
      const gx = ((px + 0.5 - box[0]!) / (box[2]! - box[0]!)) * 2 - 1;
      const gy = ((py + 0.5 - box[1]!) / (box[3]! - box[1]!)) * 2 - 1;
      const ix = ((gx + 1) * m - 1) / 2;
      const iy = ((gy + 1) * m - 1) / 2;
      const x0 = Math.floor(ix);
      const y0 = Math.floor(iy);
      const fx = ix - x0;
      const fy = iy - y0;
      out[py * w + px] = at(y0, x0) * (1 - fx) * (1 - fy) + at(y0, x0 + 1) * fx * (1 - fy) + at(y0 + 1, x0) * (1 - fx) * fy + at(y0 + 1, x0 + 1) * fx * fy;
    }
  }
  return out;
}

describe('detector_postprocess', () => {
  beforeAll(async () => {
    await init();
  });

  it('scales, clips and drops empty boxes like the float64 reference', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const n = 23;
    const boxes = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      const x = rng.uniform(-20, 90);
      const y = rng.uniform(-20, 70);
      boxes.set([x, y, x + rng.uniform(0, 40), y + rng.uniform(0, 40)], 4 * i);
    }
    boxes.set([-10, 5, -2, 20], 0); // entirely left of the image: empty after clipping
    boxes.set([10, 10, 10, 30], 4); // zero width
    const got = postprocessBoxes(boxes, [64, 80], [96, 100]);
    const ref = refClip(boxes, 100 / 80, 96 / 64, 96, 100);
    expect(Array.from(got.keep)).toEqual(ref.keep);
    expect(got.keep).not.toContain(0);
    expect(got.keep).not.toContain(1);
    expectClose(got.boxes, ref.boxes, { atol: 1e-4, rtol: 1e-6, what: `clipped boxes seed ${seed}` });
    expect(() => postprocessBoxes([1, 2, 3], [1, 1], [1, 1])).toThrow(/N \* 4/);
  });

  it('pastes the kept masks into the clipped boxes (float64 reference, threshold 0.5)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const M = 6;
    const [H, W] = [19, 23];
    const boxes = Float32Array.from([-4.3, 2.2, 12.6, 15.1, 30, 30, 40, 40, 5.5, 1.25, 21.75, 30.5]); // the 2nd lies outside
    const probs = Float32Array.from({ length: 3 * M * M }, () => rng.next());
    const res = await detectorPostprocess({
      boxes,
      scores: [0.9, 0.8, 0.7],
      classes: [2, 0, 1],
      maskScores: [0.5, 0.4, 0.3],
      maskProbs: fromArray(probs, [3, 1, M, M]),
      inputSize: [H, W],
      outputSize: [H, W],
    });
    expect(Array.from(res.keep)).toEqual([0, 2]);
    expect(Array.from(res.classes)).toEqual([2, 1]);
    expect(Array.from(res.scores)).toEqual([Math.fround(0.9), Math.fround(0.7)]);
    expect(Array.from(res.maskScores)).toEqual([Math.fround(0.5), Math.fround(0.3)]);
    expect(res.masks.length).toBe(2);
    res.keep.forEach((r, j) => {
      const box = Array.from(res.boxes.subarray(4 * j, 4 * j + 4));
      const ref = refPaste(probs.subarray(r * M * M, (r + 1) * M * M), M, box, H, W);
      let bad = 0;
      ref.forEach((p, i) => {
        if (Math.abs(p - 0.5) > 1e-5 && (p >= 0.5 ? 1 : 0) !== res.masks[j]![i]) bad++;
      });
      expect(bad, `mask ${r}: pixels differing from the reference (seed ${seed})`).toBe(0);
    });
  });

  it('masks equal the full-image paste of the old path; regions hold them; fullMasks: false skips them', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const [n, M, H, W] = [9, 8, 41, 53];
    const [h, w] = [30, 40]; // network input: boxes are scaled by 53/40 and 41/30
    const boxes = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      const x = rng.uniform(-10, w);
      const y = rng.uniform(-10, h);
      boxes.set([x, y, x + rng.uniform(0.2, 30), y + rng.uniform(0.2, 25)], 4 * i);
    }
    const probs = Float32Array.from({ length: n * M * M }, () => rng.next());
    const input = { boxes, scores: Array.from({ length: n }, () => rng.next()), classes: new Array(n).fill(0), maskProbs: fromArray(probs, [n, 1, M, M]), inputSize: [h, w] as [number, number], outputSize: [H, W] as [number, number] };
    const res = await detectorPostprocess(input);
    expect(res.masks.length).toBe(res.keep.length);
    const kept = Float32Array.from(Array.from(res.keep).flatMap((r) => Array.from(probs.subarray(r * M * M, (r + 1) * M * M))));
    const old = (await pasteMasksInImage(fromArray(kept, [res.keep.length, M, M]), fromArray(res.boxes, [res.keep.length, 4]), [H, W]).data()) as Uint32Array;
    res.masks.forEach((m, j) => {
      expect(Buffer.from(m).equals(Buffer.from(Uint8Array.from(old.subarray(j * H * W, (j + 1) * H * W)))), `mask ${j} (seed ${seed})`).toBe(true);
      const g = res.maskRegions[j]!;
      let inside = 0;
      for (let y = 0; y < g.height; y++) for (let x = 0; x < g.width; x++) inside += g.data[y * g.width + x]!;
      expect(inside, `mask ${j}: every pixel lies in its region`).toBe(m.reduce((a, v) => a + v, 0));
    });
    const lean = await detectorPostprocess({ ...input, fullMasks: false });
    expect(lean.masks).toEqual([]);
    expect(lean.maskRegions).toEqual(res.maskRegions);
  });

  it('score threshold and top-k select before pasting: the same detections and masks as filtering after', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const [n, M, H, W] = [12, 6, 24, 28];
    const boxes = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      const x = rng.uniform(-4, W);
      const y = rng.uniform(-4, H);
      boxes.set([x, y, x + rng.uniform(1, 12), y + rng.uniform(1, 12)], 4 * i);
    }
    boxes.set([-9, 0, -1, 5], 4 * 3); // empty after clipping
    const scores = Float32Array.from({ length: n }, () => rng.next());
    scores[5] = scores[7]!; // a tie
    const probs = Float32Array.from({ length: n * M * M }, () => rng.next());
    const input = { boxes, scores, classes: Array.from({ length: n }, (_, i) => i % 3), maskScores: Array.from(scores, (v) => v / 2), maskProbs: fromArray(probs, [n, 1, M, M]), inputSize: [H, W] as [number, number], outputSize: [H, W] as [number, number] };
    const all = await detectorPostprocess(input);
    for (const opts of [{ scoreThreshold: 0.4 }, { topK: 5 }, { scoreThreshold: 0.2, topK: 3 }, { topK: 0 }, { scoreThreshold: 2 }]) {
      const res = await detectorPostprocess({ ...input, ...opts });
      const want = Array.from(all.keep)
        .map((r, j) => ({ r, j, s: scores[r]! }))
        .filter((e) => opts.scoreThreshold === undefined || e.s >= opts.scoreThreshold);
      const top = opts.topK === undefined ? want : [...want].sort((a, b) => b.s - a.s || a.j - b.j).slice(0, opts.topK).sort((a, b) => a.j - b.j);
      const what = `${JSON.stringify(opts)} (seed ${seed})`;
      expect(Array.from(res.keep), what).toEqual(top.map((e) => e.r));
      expect(Array.from(res.classes), what).toEqual(top.map((e) => all.classes[e.j]));
      expect(Array.from(res.maskScores), what).toEqual(top.map((e) => all.maskScores[e.j]));
      expect(Array.from(res.boxes), what).toEqual(top.flatMap((e) => Array.from(all.boxes.subarray(4 * e.j, 4 * e.j + 4))));
      expect(res.maskRegions, what).toEqual(top.map((e) => all.maskRegions[e.j]));
    }
    expect(Array.from(selectDetections([0.5, 0.9, 0.9, 0.1], [0, 1, 2, 3], { topK: 2 }))).toEqual([1, 2]);
    expect(Array.from(selectDetections([0.5, 0.9, 0.9, 0.1], [3, 2, 0], { scoreThreshold: 0.2, topK: 1 }))).toEqual([2]);
    expect(() => selectDetections([1], [0], { topK: 1.5 })).toThrow(/topK/);
  });

  it('pastes 150 detections at 704x520 (the old single [N, H, W] tensor was over the 128 MiB binding limit)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const [n, M, H, W] = [150, 28, 520, 704];
    const [h, w] = [288, 390];
    const boxes = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      const x = rng.uniform(-5, w);
      const y = rng.uniform(-5, h);
      boxes.set([x, y, x + rng.uniform(3, 40), y + rng.uniform(3, 40)], 4 * i);
    }
    const probs = Float32Array.from({ length: n * M * M }, () => rng.next());
    const res = await detectorPostprocess({ boxes, scores: new Array(n).fill(0.5), classes: new Array(n).fill(1), maskProbs: fromArray(probs, [n, 1, M, M]), inputSize: [h, w], outputSize: [H, W], fullMasks: false });
    expect(res.maskRegions.length).toBe(res.keep.length);
    expect(res.keep.length).toBeGreaterThan(140);
    // Spot-check one mask against the float64 reference inside its region.
    const j = res.keep.length >> 1;
    const g = res.maskRegions[j]!;
    const box = Array.from(res.boxes.subarray(4 * j, 4 * j + 4));
    const ref = refPaste(probs.subarray(res.keep[j]! * M * M, (res.keep[j]! + 1) * M * M), M, box, g.y0 + g.height, g.x0 + g.width);
    let bad = 0;
    for (let y = 0; y < g.height; y++) for (let x = 0; x < g.width; x++) {
      const p = ref[(g.y0 + y) * (g.x0 + g.width) + g.x0 + x]!;
      if (Math.abs(p - 0.5) > 1e-5 && (p >= 0.5 ? 1 : 0) !== g.data[y * g.width + x]) bad++;
    }
    expect(bad, `seed ${seed}`).toBe(0);
  });
});
