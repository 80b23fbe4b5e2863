import { describe, expect, it } from 'vitest';
import { Rng, testSeed } from '../util';
import {
  RleFormatError,
  decodeRle,
  encodeRle,
  parseRle,
  runsBounds,
  runsIntersection,
  runsToRle,
  runsUnion,
} from '../../structures/rle';
import { cropToRuns, runsToCrop, cropToMask } from '../../structures/mask-crop';

function randomMask(rng: Rng, h: number, w: number, density: number): Uint8Array {
  const m = new Uint8Array(h * w);
  for (let i = 0; i < m.length; i++) m[i] = rng.next() < density ? 1 : 0;
  return m;
}

describe('competition RLE', () => {
  it('encodes the spec examples (4x6 image, row-major, 1-indexed)', () => {
    const sq = new Uint8Array(24);
    sq[0] = sq[1] = sq[6] = sq[7] = 1;
    expect(encodeRle(sq)).toBe('1 2 7 2');
    const rect = new Uint8Array(24);
    for (let r = 2; r <= 3; r++) for (let c = 3; c <= 5; c++) rect[r * 6 + c] = 1;
    expect(encodeRle(rect)).toBe('16 3 22 3');
    expect(encodeRle(new Uint8Array(24))).toBe('');
  });

  it('decodes the real train.csv row 0 prefix to a blob at rows 167-171, column 576 (row-major)', () => {
    const m = decodeRle('118145 6 118849 7 119553 8 120257 8 120961 9', 520, 704);
    expect(m[167 * 704 + 576]).toBe(1);
    expect(m[167 * 704 + 581]).toBe(1);
    expect(m[167 * 704 + 582]).toBe(0);
    expect(m[171 * 704 + 584]).toBe(1);
    expect(m.reduce((a, b) => a + b, 0)).toBe(38);
  });

  it('round-trips random masks including all four corners and full rows', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (let trial = 0; trial < 30; trial++) {
      const h = rng.int(1, 40);
      const w = rng.int(1, 40);
      const m = randomMask(rng, h, w, rng.uniform(0.05, 0.95));
      if (trial % 3 === 0) {
        m[0] = 1;
        m[w - 1] = 1;
        m[(h - 1) * w] = 1;
        m[h * w - 1] = 1;
      }
      if (trial % 5 === 0) m.fill(1, 0, w); // a full first row joins with the next row's run
      const text = encodeRle(m);
      expect(decodeRle(text, h, w), `seed ${seed} trial ${trial}`).toEqual(m);
      const runs = parseRle(text, h * w);
      const crop = runsToCrop(runs, w, h);
      expect(cropToMask(crop), `crop seed ${seed}`).toEqual(m);
      expect(runsToRle(cropToRuns(crop)), `crop runs seed ${seed}`).toBe(text);
    }
  });

  it('computes intersections, unions and bounds from runs', () => {
    const a = parseRle('1 3 7 3', 24);
    const b = parseRle('2 3 8 1 20 2', 24);
    expect(runsIntersection(a, b)).toBe(3);
    expect(runsToRle(runsUnion(a, b))).toBe('1 4 7 3 20 2');
    expect(runsBounds(parseRle('6 2', 24), 6)).toEqual({ x0: 0, y0: 0, x1: 5, y1: 1 });
    expect(runsBounds(parseRle('16 3 22 3', 24), 6)).toEqual({ x0: 3, y0: 2, x1: 5, y1: 3 });
  });

  it.each([
    ['1 2 3', /odd number of values/],
    ['1 a', /not two non-negative integers/],
    ['0 2', /start 0 is not positive/],
    ['3 0', /length 0 is not positive/],
    ['10 2 5 2', /pairs must be sorted/],
    ['1 5 3 2', /overlaps the previous run/],
    ['20 6', /past the image end \(24 pixels\)/],
  ])('rejects %j', (text, msg) => {
    expect(() => parseRle(text, 24)).toThrow(RleFormatError);
    expect(() => parseRle(text, 24)).toThrow(msg);
  });
});
