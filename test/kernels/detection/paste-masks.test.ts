// Mask paste against a float64 port of Detectron2's _do_paste_mask (grid_sample bilinear,
// align_corners=False, zero padding) and against a torch fixture; the region-packed paste bit for
// bit against the full-image paste, and against the float64 reference at 704x520 with > 90 masks.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init, pasteMasksInImage, pasteMasksPacked, pasteRegion, readPackedMasks, regionToMask, rt } from '../../../engine';
import { expectClose, Rng, testSeed } from '../../util';

beforeAll(async () => {
  await init();
});

/** Detectron2's _do_paste_mask of one R x R mask at one output pixel, in float64. */
function refSample(mask: ArrayLike<number>, r: number, box: ArrayLike<number>, px: number, py: number): number {
  const [x0, y0, x1, y1] = [box[0]!, box[1]!, box[2]!, box[3]!];
  const tap = (y: number, x: number) => (y < 0 || x < 0 || y >= r || x >= r ? 0 : mask[y * r + x]!);
  const ix = (((px + 0.5 - x0) / (x1 - x0)) * 2 - 1 + 1) * r / 2 - 0.5;
  const iy = (((py + 0.5 - y0) / (y1 - y0)) * 2 - 1 + 1) * r / 2 - 0.5;
  const fx = Math.floor(ix);
  const fy = Math.floor(iy);
  const lx = ix - fx;
  const ly = iy - fy;
  return tap(fy, fx) * (1 - lx) * (1 - ly) + tap(fy, fx + 1) * lx * (1 - ly) + tap(fy + 1, fx) * (1 - lx) * ly + tap(fy + 1, fx + 1) * lx * ly;
}

function refPaste(masks: Float32Array, r: number, boxes: Float32Array, h: number, w: number, cpuRegion = false): Float64Array {
  const n = boxes.length / 4;
  const out = new Float64Array(n * h * w);
  for (let k = 0; k < n; k++) {
    const box = boxes.subarray(4 * k, 4 * k + 4);
    const [x0, y0, x1, y1] = box as unknown as number[];
    for (let py = 0; py < h; py++) for (let px = 0; px < w; px++) {
      if (cpuRegion && (px < Math.max(Math.floor(x0!) - 1, 0) || px >= Math.ceil(x1!) + 1 || py < Math.max(Math.floor(y0!) - 1, 0) || py >= Math.ceil(y1!) + 1)) continue;
      out[(k * h + py) * w + px] = refSample(masks.subarray(k * r * r, (k + 1) * r * r), r, box, px, py);
    }
  }
  return out;
}

/** Binary masks may differ only where the probability sits within `eps` of the threshold. */
function expectBinary(actual: ArrayLike<number>, soft: Float64Array, eps: number, what: string): void {
  let bad = 0;
  for (let i = 0; i < soft.length; i++) if ((actual[i]! !== 0) !== (soft[i]! >= 0.5) && Math.abs(soft[i]! - 0.5) > eps) bad++;
  expect(bad, `${what}: pixels with the wrong binary value away from the threshold`).toBe(0);
}

describe('pasteMasksInImage', () => {
  it('soft and binary masks equal the float64 reference; boxes partly outside; CPU-region variant', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const [n, r, h, w] = [4, 7, 23, 31];
    const masks = Float32Array.from(rng.uniformArray(n * r * r, 0, 1));
    const boxes = Float32Array.from([2.5, 3.25, 17.75, 20.5, -4, -2.5, 9, 7.5, 20.2, 12.9, 40, 30, 5, 5, 5.8, 6.4]);
    const M = fromArray(masks, [n, r, r]);
    const B = fromArray(boxes, [n, 4]);
    const soft = refPaste(masks, r, boxes, h, w);
    expectClose(await pasteMasksInImage(M, B, [h, w], { threshold: -1 }).data(), soft, { atol: 2e-6, rtol: 1e-5, what: `soft paste (seed ${seed})` });
    const bin = pasteMasksInImage(M, B, [h, w]);
    expect(bin.dtype).toBe('bool');
    expectBinary(await bin.data(), soft, 1e-5, `binary paste (seed ${seed})`);
    const cpu = refPaste(masks, r, boxes, h, w, true);
    expectClose(await pasteMasksInImage(M, B, [h, w], { threshold: -1, cpuRegion: true }).data(), cpu, { atol: 2e-6, rtol: 1e-5, what: 'cpu-region paste' });
  });

  it('rejects non-square masks and mismatched boxes', () => {
    expect(() => pasteMasksInImage(fromArray(new Float32Array(6), [1, 2, 3]), fromArray([0, 0, 1, 1], [1, 4]), [4, 4])).toThrow(/square/);
    expect(() => pasteMasksInImage(fromArray(new Float32Array(8), [2, 2, 2]), fromArray([0, 0, 1, 1], [1, 4]), [4, 4])).toThrow(/\[2, 4\]/);
  });

  it('matches the torch grid_sample fixture (Detectron2 _do_paste_mask, GPU path)', async () => {
    const fx = JSON.parse(readFileSync(new URL('../../fixtures/detection/paste_masks.json', import.meta.url), 'utf8'));
    const [h, w] = fx.image_size;
    const r = fx.mask_size;
    const n = fx.boxes.length / 4;
    const M = fromArray(Float32Array.from(fx.masks), [n, r, r]);
    const B = fromArray(Float32Array.from(fx.boxes), [n, 4]);
    expectClose(await pasteMasksInImage(M, B, [h, w], { threshold: -1 }).data(), fx.soft, { atol: 1e-6, rtol: 1e-4, what: 'paste soft vs torch' });
    const bin = await pasteMasksInImage(M, B, [h, w]).data();
    let diff = 0;
    for (let i = 0; i < bin.length; i++) if (bin[i] !== fx.mask[i]) diff++;
    expect(diff, 'binary pixels differing from torch').toBe(0);
  });
});

/** Random boxes of every awkward kind the region logic must get right. */
function awkwardBoxes(rng: Rng, n: number, h: number, w: number, r: number): Float32Array {
  const out: number[] = [];
  const kinds = [
    () => { const x = rng.uniform(-5, w); const y = rng.uniform(-5, h); return [x, y, x + rng.uniform(2, 15), y + rng.uniform(2, 12)]; }, // ordinary, some past an edge
    () => [rng.uniform(-30, -2), rng.uniform(0, h / 2), rng.uniform(1, w / 2), rng.uniform(h / 2, h + 20)], // partly outside left and bottom
    () => { const x = rng.uniform(0, w); const y = rng.uniform(0, h); return [x, y, x + rng.uniform(0.05, 0.9), y + rng.uniform(0.001, 0.5)]; }, // tiny
    () => { const x = rng.uniform(-3, 3); return [x, rng.uniform(-3, 3), x + rng.uniform(3 * r, 6 * r), rng.uniform(2 * r, 5 * r)]; }, // wider than 2R: the margin is over one pixel
    () => [w + rng.uniform(1, 9), rng.uniform(0, h), w + rng.uniform(10, 20), h + 4], // wholly outside
    () => { const x = Math.floor(rng.uniform(0, w - 5)); const y = Math.floor(rng.uniform(0, h - 5)); return [x, y, x + 4, y + 3]; }, // integer edges
    () => { const x = rng.uniform(0, w); return [x, 2, x - 3, 9]; }, // x1 < x0: degenerate, whole image
  ];
  for (let i = 0; i < n; i++) out.push(...kinds[i % kinds.length]!());
  return Float32Array.from(out);
}

async function fullBits(masks: Float32Array, boxes: Float32Array, r: number, h: number, w: number, threshold: number, cpuRegion: boolean): Promise<Uint32Array> {
  const n = boxes.length / 4;
  return (await pasteMasksInImage(fromArray(masks, [n, r, r]), fromArray(boxes, [n, 4]), [h, w], { threshold, cpuRegion }).data()) as Uint32Array;
}

describe('pasteMasksPacked', () => {
  it('gives the same bits as the full-image paste: awkward boxes, thresholds, CPU region, chunked', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const [n, r, h, w] = [21, 7, 37, 45];
    // Values over 1 too: exactness must not rest on probabilities <= 1.
    const masks = Float32Array.from(rng.uniformArray(n * r * r, 0, 1.6));
    const boxes = awkwardBoxes(rng, n, h, w, r);
    for (const [threshold, cpuRegion, maxChunkBytes] of [[0.5, false, undefined], [0.5, true, 256], [0.1, false, 256], [0, false, undefined]] as const) {
      const what = `threshold ${threshold}, cpuRegion ${cpuRegion}, chunk ${maxChunkBytes} (seed ${seed})`;
      const full = await fullBits(masks, boxes, r, h, w, threshold, cpuRegion);
      const packed = pasteMasksPacked(fromArray(masks, [n, 1, r, r]), boxes, [h, w], { threshold, cpuRegion, maxChunkBytes });
      if (maxChunkBytes) expect(packed.chunks.length, what).toBeGreaterThan(3);
      const regions = await readPackedMasks(packed);
      expect(regions.length).toBe(n);
      for (let k = 0; k < n; k++) {
        const got = regionToMask(regions[k]!, [h, w]);
        let diff = 0;
        for (let i = 0; i < h * w; i++) if (got[i] !== full[k * h * w + i]) diff++;
        expect(diff, `mask ${k} box [${Array.from(boxes.subarray(4 * k, 4 * k + 4))}] region ${JSON.stringify({ ...regions[k], data: undefined })}: pixels differing, ${what}`).toBe(0);
      }
      if (threshold === 0) expect(regions.every((g) => g.width === w && g.height === h)).toBe(true);
    }
  });

  it('regions: about the box plus 1 + w/2R pixels, clipped to the image; whole image when degenerate', () => {
    expect(pasteRegion([10.5, 20.25, 30.5, 40.75], 28, [100, 200])).toEqual([8, 18, 32, 42]);
    expect(pasteRegion([10.5, 20.25, 30.5, 40.75], 28, [100, 200], 0.5, true)).toEqual([9, 19, 32, 42]);
    // 280 px wide at R = 28: 5 px beyond the box on each side can still sample the mask.
    expect(pasteRegion([100, 0, 380, 10], 28, [10, 704])).toEqual([93, 0, 386, 10]);
    expect(pasteRegion([-50, -50, -20, -20], 28, [10, 10])).toEqual([0, 0, 0, 0]);
    expect(pasteRegion([1, 1, 1, 5], 28, [10, 12])).toEqual([0, 0, 12, 10]);
    expect(pasteRegion([NaN, 1, 3, 5], 28, [10, 12])).toEqual([0, 0, 12, 10]);
    expect(pasteRegion([1, 1, 3, 5], 28, [10, 12], 0)).toEqual([0, 0, 12, 10]);
  });

  it('pastes 120 masks at 704x520 (over 128 MiB as a full u32 tensor) equal to the float64 reference', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const [n, r, h, w] = [120, 28, 520, 704];
    const masks = Float32Array.from(rng.uniformArray(n * r * r, 0, 1));
    const boxes = new Float32Array(4 * n);
    for (let k = 0; k < n; k++) {
      const bw = k % 40 === 0 ? rng.uniform(150, 400) : rng.uniform(0.5, 70);
      const bh = rng.uniform(0.5, 70);
      const x = rng.uniform(-20, w - 5);
      const y = rng.uniform(-20, h - 5);
      boxes.set([x, y, x + bw, y + bh], 4 * k);
    }
    expect(n * h * w * 4).toBeGreaterThan(128 * 2 ** 20); // WebGPU's default binding limit
    const packed = pasteMasksPacked(fromArray(masks, [n, 1, r, r]), boxes, [h, w]);
    const bytes = packed.chunks.reduce((a, c) => a + 4 * c.bits.numel, 0);
    expect(bytes).toBeLessThan((n * h * w) / 32);
    const regions = await readPackedMasks(packed);
    let bad = 0;
    for (let k = 0; k < n; k++) {
      const g = regions[k]!;
      // The reference inside the region (outside it every tap misses the mask: checked bit for bit above).
      for (let y = 0; y < g.height; y++) for (let x = 0; x < g.width; x++) {
        const p = refSample(masks.subarray(k * r * r, (k + 1) * r * r), r, boxes.subarray(4 * k, 4 * k + 4), g.x0 + x, g.y0 + y);
        if (Math.abs(p - 0.5) > 1e-5 && (p >= 0.5 ? 1 : 0) !== g.data[y * g.width + x]) bad++;
      }
    }
    expect(bad, `pixels differing from the float64 reference (seed ${seed})`).toBe(0);
  });

  it('rejects bad input', () => {
    const M = fromArray(new Float32Array(2 * 9), [2, 3, 3]);
    expect(() => pasteMasksPacked(M, [0, 0, 1, 1], [4, 4])).toThrow(/boxes must be \[2, 4\]/);
    expect(() => pasteMasksPacked(M, [0, 0, 1, 1, 2], [4, 4])).toThrow(/N \* 4/);
    expect(() => pasteMasksPacked(M, [0, 0, 1, 1, 0, 0, 2, 2], [4, 4], { threshold: NaN })).toThrow(/threshold/);
    expect(() => pasteMasksPacked(M, [0, 0, 1, 1, 0, 0, 2, 2], [4.5, 4])).toThrow(/image size/);
    expect(() => pasteMasksPacked(M, [0, 0, 1, 1, 0, 0, 2, 2], [40, 40], { threshold: 0, maxChunkBytes: 64 })).toThrow(/chunk limit/);
  });
});
