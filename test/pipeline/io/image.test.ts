// readImageGray: PNG and TIFF told apart by magic bytes; 8- and 16-bit grayscale TIFFs (both byte
// orders, several strips, WhiteIsZero) from a tiny uncompressed TIFF writer in this test; 16-bit
// becomes 8-bit by v >> 8.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import UTIF from 'utif';
import { imageStem, isImageFileName, readImageGray } from '../../../pipeline/io/image';
import { writePngGray } from '../../../pipeline/io/png';
import { InputError } from '../../../runtime/errors';
import { encodeGrayTiff } from './tiff-writer';

const W = 7;
const H = 5;
const dir = mkdtempSync(join(tmpdir(), 'img-'));
const gray8 = Uint8Array.from({ length: W * H }, (_, i) => (i * 37 + 11) % 256);
const gray16 = Uint16Array.from({ length: W * H }, (_, i) => (i * 1877 + 300) % 65536);

describe('readImageGray', () => {
  it.each([
    ['LE, one strip', true, undefined],
    ['BE, strips of 2 rows', false, 2],
  ])('8-bit gray TIFF (%s): the pixels as they are', (_n, le, rps) => {
    const f = join(dir, `g8-${le}-${rps}.tif`);
    writeFileSync(f, encodeGrayTiff(W, H, gray8, { bits: 8, le, rowsPerStrip: rps }));
    const img = readImageGray(f);
    expect([img.width, img.height]).toEqual([W, H]);
    expect(Array.from(img.data)).toEqual(Array.from(gray8));
  });

  it.each([
    ['LE', true],
    ['BE', false],
  ])('16-bit gray TIFF (%s): v >> 8', (_n, le) => {
    const f = join(dir, `g16-${le}.tiff`);
    writeFileSync(f, encodeGrayTiff(W, H, gray16, { bits: 16, le, rowsPerStrip: 3 }));
    const img = readImageGray(f, { width: W, height: H });
    expect(Array.from(img.data)).toEqual(Array.from(gray16, (v) => v >> 8));
  });

  it('WhiteIsZero 8-bit TIFF is inverted', () => {
    const f = join(dir, 'wiz.tif');
    writeFileSync(f, encodeGrayTiff(W, H, gray8, { bits: 8, photometric: 0 }));
    expect(Array.from(readImageGray(f).data)).toEqual(Array.from(gray8, (v) => 255 - v));
  });

  it('RGBA TIFF written by UTIF itself: luma as for PNG', () => {
    const rgba = new Uint8Array(W * H * 4);
    for (let i = 0; i < W * H; i++) rgba.set([gray8[i]!, gray8[i]!, gray8[i]!, 255], 4 * i);
    const f = join(dir, 'rgba.tif');
    writeFileSync(f, new Uint8Array(UTIF.encodeImage(rgba, W, H)));
    expect(Array.from(readImageGray(f).data)).toEqual(Array.from(gray8));
  });

  it('dispatches on magic bytes, not the name: a PNG named .tif reads as PNG; wrong size and junk are InputErrors', () => {
    const f = join(dir, 'really-png.tif');
    writePngGray(f, { width: W, height: H, data: gray8 });
    expect(Array.from(readImageGray(f).data)).toEqual(Array.from(gray8));
    const t = join(dir, 'size.tif');
    writeFileSync(t, encodeGrayTiff(W, H, gray8, { bits: 8 }));
    expect(() => readImageGray(t, { width: W + 1, height: H })).toThrow(/image is 7x5 \(WxH\), expected 8x5/);
    const junk = join(dir, 'junk.png');
    writeFileSync(junk, 'hello, world');
    expect(() => readImageGray(junk)).toThrow(InputError);
    expect(() => readImageGray(junk)).toThrow(/not a PNG or TIFF/);
  });

  it('image file names', () => {
    expect(['a.png', 'b.TIF', 'c.tiff', 'd.jpg'].map(isImageFileName)).toEqual([true, true, true, false]);
    expect(imageStem('x/y.tiff')).toBe('x/y');
    expect(imageStem('y.json')).toBe('y.json');
  });
});
