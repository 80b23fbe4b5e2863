// RGBA figures to PNG (pngjs), written atomically. The figures are opaque, so they are stored as
// 8-bit RGB (alpha dropped); readPngRgba reads any PNG back as RGBA (for tests and tools).
import { PNG } from 'pngjs';
import { writeFileAtomic } from '../io/atomic';
import { decodePngFile } from '../io/png';

/** An RGBA raster, the form the figures are drawn in (pipeline/viz/raster.ts). */
export interface RgbaImage {
  width: number;
  height: number;
  /** Row-major RGBA, 4 bytes per pixel. */
  rgba: Uint8Array;
}

export function encodePngRgba(img: RgbaImage): Buffer {
  if (img.rgba.length !== img.width * img.height * 4) throw new Error(`encodePngRgba: ${img.rgba.length} bytes for a ${img.width}x${img.height} RGBA image`);
  return PNG.sync.write(
    { width: img.width, height: img.height, data: Buffer.from(img.rgba.buffer, img.rgba.byteOffset, img.rgba.length) } as PNG,
    { colorType: 2, inputColorType: 6, inputHasAlpha: true, bitDepth: 8 },
  );
}

export function writePngRgba(file: string, img: RgbaImage): void {
  writeFileAtomic(file, encodePngRgba(img));
}

export function readPngRgba(file: string): RgbaImage {
  const png = decodePngFile(file);
  return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length) };
}
