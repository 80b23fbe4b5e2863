// Folders of images are PNG and TIFF alike: listImages / cocoImagesOfFolder list both (ids in
// sorted order of the name without extension), a duplicate id is an InputError, and the predictor
// reads a 16-bit TIFF as the PNG of its high bytes.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../runtime/runtime';
import { InputError } from '../../../runtime/errors';
import { cocoImagesOfFolder, listImages, sartoriusId } from '../../../pipeline/data/image-list';
import { writePngGray } from '../../../pipeline/io/png';
import { predictImages } from '../../../pipeline/engine/predictor';
import { encodeGrayTiff } from '../io/tiff-writer';
import { StandInModel } from '../engine/standin';

const W = 40;
const H = 32;
// a bright rectangle x 5..19, y 4..24 in 16 bits
const px16 = Uint16Array.from({ length: W * H }, (_, i) => {
  const x = i % W;
  const y = Math.floor(i / W);
  return x >= 5 && x < 20 && y >= 4 && y < 25 ? 60000 : 7000;
});

beforeAll(async () => {
  await init();
});

describe('image folders with PNG and TIFF', () => {
  it('lists PNG, TIF and TIFF files in id order; COCO entries keep the real file names and sizes', () => {
    const data = mkdtempSync(join(tmpdir(), 'il-'));
    const dir = join(data, 'test');
    const mk = (f: string, w: number) => (f.endsWith('.png') ? writePngGray(join(dir, f), { width: w, height: 3, data: new Uint8Array(w * 3) }) : writeFileSync(join(dir, f), encodeGrayTiff(w, 3, new Uint8Array(w * 3), { bits: 8 })));
    mkdirSync(dir);
    mk('b.tif', 5);
    mk('a.png', 4);
    mk('c.TIFF', 6);
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    const { entries } = listImages(dir);
    expect(entries.map((e) => [e.id, e.name, e.file])).toEqual([
      [1, 'a', join(dir, 'a.png')],
      [2, 'b', join(dir, 'b.tif')],
      [3, 'c', join(dir, 'c.TIFF')],
    ]);
    const coco = cocoImagesOfFolder(data, 'test');
    expect(coco.map((im) => [im.id, im.file_name, im.width, im.height, sartoriusId(im)])).toEqual([
      [1, 'test/a.png', 4, 3, 'a'],
      [2, 'test/b.tif', 5, 3, 'b'],
      [3, 'test/c.TIFF', 6, 3, 'c'],
    ]);
    mk('a.tif', 4);
    expect(() => listImages(dir)).toThrow(InputError);
    expect(() => listImages(dir)).toThrow(/same image id "a"/);
  });

  it('predict reads a 16-bit TIFF as the PNG of its high bytes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'il-pred-'));
    const tifDir = join(dir, 'tif');
    const pngDir = join(dir, 'png');
    mkdirSync(tifDir);
    mkdirSync(pngDir);
    writeFileSync(join(tifDir, 'img.tif'), encodeGrayTiff(W, H, px16, { bits: 16, le: false }));
    writePngGray(join(pngDir, 'img.png'), { width: W, height: H, data: Uint8Array.from(px16, (v) => v >> 8) });
    const opts = { minSize: 32, maxSize: 1000, categoryIds: [1, 2, 3] };
    const fromTif = await predictImages(new StandInModel(), listImages(tifDir).entries, opts);
    const fromPng = await predictImages(new StandInModel(), listImages(pngDir).entries, opts);
    expect(fromTif.length).toBe(1);
    expect(fromTif).toEqual(fromPng);
    expect(fromTif[0]!.bbox).toEqual([4.5, 3.5, 16, 22]);
  });
});
