import { describe, expect, it } from 'vitest';
import { declaredImageSize } from '../../../pipeline/io/image-format';
import { encodePngGray } from '../../../pipeline/io/png';

const bytes = (a: number[]) => new Uint8Array(a);
/** SOI, an APP0 segment, fill bytes, a DHT-like segment, then a start-of-frame `marker`. */
function jpeg(width: number, height: number, marker = 0xc0): Uint8Array {
  const app0 = [0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const dht = [0xff, 0xc4, 0, 5, 0, 0, 0];
  const sof = [0xff, marker, 0, 11, 8, height >> 8, height & 255, width >> 8, width & 255, 1, 1, 0x11, 0];
  return bytes([0xff, 0xd8, ...app0, 0xff, ...dht, ...sof]);
}

describe('declaredImageSize: the size an image header declares, before decoding', () => {
  it('reads a PNG IHDR', () => {
    const png = encodePngGray({ width: 37, height: 5, data: new Uint8Array(37 * 5) });
    expect(declaredImageSize(png)).toEqual({ width: 37, height: 5 });
    expect(declaredImageSize(png.subarray(0, 20))).toBeNull(); // cut inside IHDR
  });

  it('walks JPEG segments (fill bytes, DHT, which is not a frame) to the first SOFn, baseline or progressive', () => {
    expect(declaredImageSize(jpeg(704, 520))).toEqual({ width: 704, height: 520 });
    expect(declaredImageSize(jpeg(65535, 3, 0xc2))).toEqual({ width: 65535, height: 3 });
    const j = jpeg(10, 10);
    expect(declaredImageSize(j.subarray(0, j.length - 6))).toBeNull(); // SOF cut short
  });

  it('is null for other formats and for a JPEG whose scan starts before any frame header', () => {
    expect(declaredImageSize(bytes([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0]))).toBeNull(); // GIF
    expect(declaredImageSize(bytes([0xff, 0xd8, 0xff, 0xda, 0, 2]))).toBeNull();
    expect(declaredImageSize(bytes([]))).toBeNull();
  });
});
