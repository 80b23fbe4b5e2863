import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { MaskCrop } from '../../../structures/mask-crop';
import { runsArea, runsIntersection } from '../../../structures/rle';
import { DEFAULT_POSTPROCESS, imageClass, postprocessImage } from '../../../pipeline/post/postprocess';
import { validateSubmission } from '../../../pipeline/post/validate-submission';
import { makeTempDir } from '../tmp';

const W = 60;
const H = 40;
const rect = (x0: number, y0: number, w: number, h: number): MaskCrop => ({
  imageWidth: W, imageHeight: H, x0, y0, width: w, height: h, data: new Uint8Array(w * h).fill(1),
});
const tmp = makeTempDir('post');
afterAll(tmp.cleanup);

describe('post-processing', () => {
  it('takes the image class by majority, ties to the lowest id', () => {
    expect(imageClass([{ score: 1, categoryId: 3, mask: rect(0, 0, 1, 1) }, { score: 1, categoryId: 2, mask: rect(0, 0, 1, 1) }])).toBe('astro');
    expect(imageClass([])).toBeUndefined();
  });

  it('removes overlap in descending score order and applies thresholds and minimum pixels', () => {
    const cands = [
      { score: 0.5, categoryId: 1, mask: rect(5, 5, 10, 10) }, // 100 px, partly under the better one
      { score: 0.9, categoryId: 1, mask: rect(10, 5, 10, 10) }, // kept first
      { score: 0.1, categoryId: 1, mask: rect(40, 20, 10, 10) }, // below shsy5y threshold 0.15
      { score: 0.8, categoryId: 1, mask: rect(16, 14, 10, 10) }, // 100 - 4 overlap = 96 >= 75
      { score: 0.7, categoryId: 1, mask: rect(11, 6, 12, 12) }, // almost fully covered -> too small
    ];
    const r = postprocessImage(cands, W, H, DEFAULT_POSTPROCESS);
    expect(r.cellType).toBe('shsy5y');
    expect(r.masks.map(runsArea)).toEqual([100, 96]);
    expect(r.dropped).toEqual({ belowScore: 1, shape: 0, tooSmall: 2, chopped: 0 });
    expect(runsIntersection(r.masks[0]!, r.masks[1]!)).toBe(0);
  });

  it('applies the shape filter from the analyze table (major axis >= the 1 % percentile)', () => {
    const shapeData = { major_axis_length: { shsy5y: { min: 15, max: 60 } } } as never;
    const r = postprocessImage(
      [{ score: 0.9, categoryId: 1, mask: rect(0, 0, 10, 10) }, { score: 0.8, categoryId: 1, mask: rect(20, 0, 30, 4) }],
      W, H, { ...DEFAULT_POSTPROCESS, shapeData },
    );
    expect(r.masks.map(runsArea)).toEqual([120]);
    expect(r.dropped.shape).toBe(1);
  });
});

describe('submission validator', () => {
  const sizes = new Map([['a', { width: 6, height: 4 }], ['b', { width: 6, height: 4 }]]);
  const write = (name: string, text: string) => {
    const f = join(tmp.dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('accepts valid submissions with empty rows', async () => {
    const r = await validateSubmission(write('ok.csv', 'id,predicted\na,1 2 7 2\na,16 3\nb,\n'), sizes);
    expect(r).toEqual({ images: 2, instances: 2, emptyImages: 1 });
  });

  it.each([
    ['overlap.csv', 'id,predicted\na,1 3\na,2 2\nb,\n', /lines 2 and 3 \(image a\): masks overlap in 2 pixel\(s\)/],
    ['missing.csv', 'id,predicted\na,1 2\n', /image b: has no row/],
    ['unknown.csv', 'id,predicted\na,\nb,\nzz,1 1\n', /line 4: unknown image id "zz"/],
    ['rle.csv', 'id,predicted\na,5 1 2 1\nb,\n', /line 2 \(image a\): predicted: pair 2/],
    ['header.csv', 'image,pred\n', /line 1: header is/],
  ])('rejects %s', async (name, text, msg) => {
    await expect(validateSubmission(write(name, text), sizes)).rejects.toThrow(msg);
  });
});
