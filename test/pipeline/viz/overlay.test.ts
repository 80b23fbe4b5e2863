// Instance overlays: exact pixel values (alpha blend inside, class colour on the 1-px contour,
// the image untouched outside), every mask form the pipeline uses giving the same picture, score
// threshold and draw order, size checks, and `cellseg overlay` on a COCO results JSON.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cocoRleToJson, encodeCocoRle } from '../../../structures/coco-rle';
import { cropToMask, maskToCrop } from '../../../structures/mask-crop';
import { writePngGray } from '../../../pipeline/io/png';
import { CLASS_COLORS, overlayInstances, writeOverlayFromFiles, type OverlayInstance } from '../../../pipeline/viz/overlay';
import { readPngRgba } from '../../../pipeline/viz/png';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('overlay');
afterAll(tmp.cleanup);
const ROOT = new URL('../../../', import.meta.url).pathname;

function cellseg(...args: string[]) {
  const r = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'pipeline/cli/main.ts'), ...args], { encoding: 'utf8', cwd: tmp.dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const W = 9;
const H = 7;
const gray = Uint8Array.from({ length: W * H }, (_, i) => (i * 7) % 256);

/** Full-image mask of the rectangle [x0, x1) x [y0, y1). */
function rectMask(x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const m = new Uint8Array(W * H);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * W + x] = 1;
  return m;
}

function px(rgba: Uint8Array, x: number, y: number): number[] {
  const p = (y * W + x) * 4;
  return Array.from(rgba.subarray(p, p + 4));
}

describe('overlayInstances', () => {
  it('blends the fill, draws the contour in the class colour, leaves the rest gray', () => {
    const out = overlayInstances(gray, W, H, [{ categoryId: 2, mask: maskToCrop(rectMask(2, 1, 7, 6), W, H) }], { alpha: 0.5, legend: false });
    const [r, g, b] = CLASS_COLORS[2]!;
    const blend = (v: number, c: number) => Math.round(v * 0.5 + c * 0.5);
    // interior pixel (4, 3)
    const v = gray[3 * W + 4]!;
    expect(px(out, 4, 3)).toEqual([blend(v, r), blend(v, g), blend(v, b), 255]);
    // contour: the rectangle's border pixels
    for (const [x, y] of [[2, 1], [6, 1], [2, 5], [6, 5], [4, 1], [2, 3]] as const) expect(px(out, x, y), `${x},${y}`).toEqual([r, g, b, 255]);
    // outside: the gray value
    for (const [x, y] of [[0, 0], [1, 3], [7, 3], [4, 6]] as const) {
      const g0 = gray[y * W + x]!;
      expect(px(out, x, y)).toEqual([g0, g0, g0, 255]);
    }
    // without contour the border pixels are blended too
    const flat = overlayInstances(gray, W, H, [{ categoryId: 2, mask: rectMask(2, 1, 7, 6) }], { alpha: 0.5, legend: false, contour: false });
    const vb = gray[1 * W + 2]!;
    expect(px(flat, 2, 1)).toEqual([blend(vb, r), blend(vb, g), blend(vb, b), 255]);
  });

  it('a mask touching the image edge has its contour on the edge', () => {
    const out = overlayInstances(gray, W, H, [{ categoryId: 1, mask: rectMask(0, 0, 3, 3) }], { legend: false });
    expect(px(out, 0, 1).slice(0, 3)).toEqual([...CLASS_COLORS[1]!]);
  });

  it('MaskCrop, full mask, CocoRle and COCO JSON RLE give the same picture', () => {
    const m = rectMask(1, 2, 6, 5);
    m[3 * W + 3] = 0; // a hole
    const rle = encodeCocoRle(m, H, W);
    const forms = [maskToCrop(m, W, H), m, rle, cocoRleToJson(rle), { size: [H, W] as [number, number], counts: rle.counts }];
    const pics = forms.map((mask) => Buffer.from(overlayInstances(gray, W, H, [{ categoryId: 3, mask }], { legend: false })));
    for (const p of pics.slice(1)) expect(p.equals(pics[0]!)).toBe(true);
    expect(cropToMask(maskToCrop(m, W, H))).toEqual(m);
  });

  it('score threshold leaves instances out; the higher score is drawn on top', () => {
    const a: OverlayInstance = { categoryId: 1, score: 0.9, mask: rectMask(1, 1, 5, 5) };
    const b: OverlayInstance = { categoryId: 3, score: 0.3, mask: rectMask(3, 3, 8, 7) };
    const both = overlayInstances(gray, W, H, [a, b], { alpha: 1, legend: false, contour: false });
    expect(px(both, 4, 4).slice(0, 3)).toEqual([...CLASS_COLORS[1]!]); // overlap: a (0.9) on top though listed first
    expect(px(both, 7, 6).slice(0, 3)).toEqual([...CLASS_COLORS[3]!]);
    const thr = overlayInstances(gray, W, H, [a, b], { alpha: 1, legend: false, contour: false, scoreThresh: 0.5 });
    const g0 = gray[6 * W + 7]!;
    expect(px(thr, 7, 6)).toEqual([g0, g0, g0, 255]);
  });

  it('rejects masks of another image size and a wrong gray length', () => {
    expect(() => overlayInstances(gray, W, H, [{ categoryId: 1, mask: new Uint8Array(10) }])).toThrow(/instance 0: a full-image mask of 10 pixels for a 9x7 image/);
    expect(() => overlayInstances(gray, W, H, [{ categoryId: 1, mask: encodeCocoRle(new Uint8Array(12), 3, 4) }])).toThrow(/belongs to a 4x3 image, not 9x7/);
    expect(() => overlayInstances(gray.subarray(1), W, H, [])).toThrow(/62 gray pixels/);
  });

  it('draws a class legend with counts on a large enough image', () => {
    const big = new Uint8Array(200 * 100).fill(128);
    const out = overlayInstances(big, 200, 100, [], {});
    let white = 0;
    for (let p = 0; p < out.length; p += 4) if (out[p] === 255 && out[p + 1] === 255 && out[p + 2] === 255) white++;
    expect(white).toBeGreaterThan(50);
  });
});

describe('writeOverlayFromFiles and cellseg overlay', () => {
  const img = join(tmp.dir, 'imgs', 'b.png');
  writePngGray(join(tmp.dir, 'imgs', 'a.png'), { width: W, height: H, data: gray });
  writePngGray(img, { width: W, height: H, data: gray });
  const seg = (m: Uint8Array) => cocoRleToJson(encodeCocoRle(m, H, W));
  const results = [
    { image_id: 1, category_id: 1, score: 0.9, segmentation: seg(rectMask(0, 0, 3, 3)) },
    { image_id: 2, category_id: 2, score: 0.8, segmentation: seg(rectMask(2, 1, 7, 6)) },
    { image_id: 2, category_id: 3, score: 0.2, segmentation: seg(rectMask(0, 5, 3, 7)) },
  ];
  const pred = join(tmp.dir, 'results.json');
  writeFileSync(pred, JSON.stringify(results));

  it('finds the image id (position in its folder, --coco by file name, --image-id) and draws its instances', () => {
    const s = writeOverlayFromFiles({ image: img, pred, out: join(tmp.dir, 'o1.png'), legend: false, alpha: 1, contour: false });
    expect(s).toMatchObject({ imageId: 2, drawn: 2, total: 2 });
    const back = readPngRgba(join(tmp.dir, 'o1.png'));
    expect([back.width, back.height]).toEqual([W, H]);
    const at = (x: number, y: number) => Array.from(back.rgba.subarray((y * W + x) * 4, (y * W + x) * 4 + 3));
    expect(at(4, 3)).toEqual([...CLASS_COLORS[2]!]);
    expect(at(1, 6)).toEqual([...CLASS_COLORS[3]!]);
    const coco = join(tmp.dir, 'images.json');
    writeFileSync(coco, JSON.stringify({ images: [{ id: 1, file_name: 'test/b.png', width: W, height: H }], annotations: [], categories: [] }));
    expect(writeOverlayFromFiles({ image: img, pred, coco, out: join(tmp.dir, 'o2.png') }).imageId).toBe(1);
    expect(writeOverlayFromFiles({ image: img, pred, imageId: 2, scoreThresh: 0.5, out: join(tmp.dir, 'o3.png') })).toMatchObject({ drawn: 1, total: 2 });
  });

  it('cellseg overlay: writes the PNG; a segmentation of another size exits 2 naming the result', () => {
    const r = cellseg('overlay', '--image', img, '--pred', pred, '--score-thresh', '0.5', '--out', 'ov.png');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/wrote ov\.png: 1 of 2 instances of image_id 2/);
    expect(existsSync(join(tmp.dir, 'ov.png'))).toBe(true);
    const bad = join(tmp.dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ image_id: 1, category_id: 1, score: 1, segmentation: cocoRleToJson(encodeCocoRle(new Uint8Array(12), 3, 4)) }]));
    const b = cellseg('overlay', '--image', img, '--pred', bad, '--out', 'bad.png');
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/bad\.json: result \[0\]: segmentation size \[3, 4\] does not match/);
    expect(existsSync(join(tmp.dir, 'bad.png'))).toBe(false);
    const t = cellseg('overlay', '--image', img, '--pred', pred, '--score-thresh', '2', '--out', 'x.png');
    expect(t.code).not.toBe(0);
    expect(t.err).toMatch(/--score-thresh must be a number in \[0, 1\]/);
  });
});
