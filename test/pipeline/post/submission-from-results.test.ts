// COCO results -> submission.csv, the path `cellseg submit` and `cellseg run` share: results grouped
// by image, post-processed (score threshold, overlap removal, minimum pixels), written in the
// images' order with one empty row for an image without instances; bad results name the file.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cocoRleToJson, encodeCocoRle } from '../../../structures/coco-rle';
import { DEFAULT_POSTPROCESS } from '../../../pipeline/post/postprocess';
import { writeSubmissionFromResults } from '../../../pipeline/post/submission-from-results';
import type { CocoResult } from '../../../pipeline/data/coco/types';

const dir = mkdtempSync(join(tmpdir(), 'cellgpu-sub-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const W = 40;
const H = 30;
function rect(x0: number, y0: number, x1: number, y1: number) {
  const m = new Uint8Array(W * H);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * W + x] = 1;
  return cocoRleToJson(encodeCocoRle(m, H, W));
}
const images = [
  { id: 1, sartoriusId: 'imgA', width: W, height: H },
  { id: 2, sartoriusId: 'imgB', width: W, height: H },
];

describe('writeSubmissionFromResults', () => {
  it('post-processes each image and writes its rows in order', async () => {
    const results: CocoResult[] = [
      { image_id: 1, category_id: 1, score: 0.9, segmentation: rect(0, 0, 12, 10) }, // 120 px, kept
      { image_id: 1, category_id: 1, score: 0.8, segmentation: rect(6, 0, 18, 10) }, // overlap removed: 60 px left < 75, dropped
      { image_id: 1, category_id: 1, score: 0.1, segmentation: rect(20, 20, 35, 30) }, // below shsy5y's 0.15
    ];
    const out = join(dir, 'submission.csv');
    const r = await writeSubmissionFromResults(out, results, images, DEFAULT_POSTPROCESS, 'results.json');
    expect([r.images, r.kept, r.predicted]).toEqual([2, 1, 3]);
    expect(r.candidates.get(1)!.length).toBe(3);
    const rows = readFileSync(out, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('id,predicted');
    // Row-major 1-based runs of the 12x10 rectangle at the origin of a 40-wide image.
    const runs = Array.from({ length: 10 }, (_, y) => `${y * W + 1} 12`).join(' ');
    expect(rows.slice(1)).toEqual([`imgA,${runs}`, 'imgB,']);
  });

  it('names the results file and entry for a result of an unknown image or without a mask', async () => {
    await expect(writeSubmissionFromResults(join(dir, 'x.csv'), [{ image_id: 7, category_id: 1, score: 1, segmentation: rect(0, 0, 2, 2) }], images, DEFAULT_POSTPROCESS, 'preds.json')).rejects.toThrow(
      /preds\.json.*result \[0\].*image_id 7/,
    );
    await expect(writeSubmissionFromResults(join(dir, 'x.csv'), [{ image_id: 1, category_id: 1, score: 1, bbox: [0, 0, 1, 1] }], images, DEFAULT_POSTPROCESS, 'preds.json')).rejects.toThrow(/segmentation/);
  });
});
