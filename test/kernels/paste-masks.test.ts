// Mask paste against a float64 port of Detectron2's _do_paste_mask (grid_sample bilinear,
// align_corners=False, zero padding) and against a torch fixture.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init, pasteMasksInImage } from '../../core';
import { expectClose, Rng, testSeed } from '../util';

beforeAll(async () => {
  await init();
});

function refPaste(masks: Float32Array, r: number, boxes: Float32Array, h: number, w: number, cpuRegion = false): Float64Array {
  const n = boxes.length / 4;
  const out = new Float64Array(n * h * w);
  const tap = (k: number, y: number, x: number) => (y < 0 || x < 0 || y >= r || x >= r ? 0 : masks[k * r * r + y * r + x]!);
  for (let k = 0; k < n; k++) {
    const [x0, y0, x1, y1] = boxes.subarray(4 * k, 4 * k + 4) as unknown as number[];
    for (let py = 0; py < h; py++) for (let px = 0; px < w; px++) {
      if (cpuRegion && (px < Math.max(Math.floor(x0!) - 1, 0) || px >= Math.ceil(x1!) + 1 || py < Math.max(Math.floor(y0!) - 1, 0) || py >= Math.ceil(y1!) + 1)) continue;
      const ix = (((px + 0.5 - x0!) / (x1! - x0!)) * 2 - 1 + 1) * r / 2 - 0.5;
      const iy = (((py + 0.5 - y0!) / (y1! - y0!)) * 2 - 1 + 1) * r / 2 - 0.5;
      const fx = Math.floor(ix);
      const fy = Math.floor(iy);
      const lx = ix - fx;
      const ly = iy - fy;
      out[(k * h + py) * w + px] = tap(k, fy, fx) * (1 - lx) * (1 - ly) + tap(k, fy, fx + 1) * lx * (1 - ly) + tap(k, fy + 1, fx) * (1 - lx) * ly + tap(k, fy + 1, fx + 1) * lx * ly;
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
    const fx = JSON.parse(readFileSync(new URL('../fixtures/detection/paste_masks.json', import.meta.url), 'utf8'));
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
