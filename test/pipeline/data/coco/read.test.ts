import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCocoDataset, readCocoResults } from '../../../../pipeline/data/coco/read';
import { makeTempDir } from '../../tmp';

const tmp = makeTempDir('cocoread');
afterAll(tmp.cleanup);
const base = () => ({
  images: [{ id: 1, width: 10, height: 8, file_name: 'a.png' }],
  categories: [{ id: 1, name: 'cell' }],
  annotations: [{ id: 5, image_id: 1, category_id: 1, bbox: [1, 1, 2, 2], area: 4, iscrowd: 0, segmentation: [[1, 1, 3, 1, 3, 3, 1, 3]] }] as unknown[],
});
function file(name: string, v: unknown): string {
  const f = join(tmp.dir, name);
  writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
  return f;
}

describe('COCO / LIVECell reader', () => {
  it('reads LIVECell annotations given as an object keyed by id', () => {
    const d = base();
    const live = { ...d, annotations: { '5': d.annotations[0] } };
    expect(readCocoDataset(file('live.json', live)).annotations.map((a) => a.id)).toEqual([5]);
  });

  it.each([
    ['badjson.json', '{', /not valid JSON/],
    ['noimages.json', { annotations: [], categories: [] }, /key "images": is missing/],
    ['unkimg.json', { ...base(), annotations: [{ ...(base().annotations[0] as object), image_id: 9 }] }, /annotation id 5: unknown image_id 9/],
    ['unkcat.json', { ...base(), annotations: [{ ...(base().annotations[0] as object), category_id: 4 }] }, /annotation id 5: unknown category_id 4/],
    ['dupimg.json', { ...base(), images: [base().images[0], base().images[0]] }, /image id 1: appears twice/],
    ['badrle.json', { ...base(), annotations: [{ ...(base().annotations[0] as object), segmentation: { size: [8, 10], counts: 'xyz' } }] }, /segmentation RLE/],
    ['rlesize.json', { ...base(), annotations: [{ ...(base().annotations[0] as object), segmentation: { size: [9, 10], counts: [90] } }] }, /size \[9, 10\] differs/],
  ])('rejects %s', (name, content, msg) => {
    expect(() => readCocoDataset(file(name, content))).toThrow(msg);
  });

  it('rejects results with unknown image ids or categories', () => {
    const gt = readCocoDataset(file('gt.json', base()));
    expect(() => readCocoResults(file('r1.json', [{ image_id: 2, category_id: 1, score: 1, bbox: [0, 0, 1, 1] }]), gt, 'bbox')).toThrow(
      /result \[0\]: unknown image_id 2/,
    );
    expect(() => readCocoResults(file('r2.json', [{ image_id: 1, category_id: 7, score: 1, bbox: [0, 0, 1, 1] }]), gt, 'bbox')).toThrow(
      /unknown category_id 7/,
    );
    expect(() => readCocoResults(file('r3.json', { a: 1 }), gt, 'segm')).toThrow(/results must be a list/);
  });
});
