// PNG read/write through pngjs. Sartorius images are 8-bit grayscale 704x520; RGB is supported for
// figures and colour inputs (converted to gray as the notebooks' OpenCV reads give identical channels).
import { existsSync, readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { InputError } from '../../runtime/errors';
import { writeFileAtomic } from './atomic';

export interface GrayImage {
  width: number;
  height: number;
  /** Row-major, one byte per pixel. */
  data: Uint8Array;
}

export interface RgbImage {
  width: number;
  height: number;
  /** Row-major, 3 bytes per pixel. */
  data: Uint8Array;
}

/** Reads a PNG as 8-bit gray (RGB/RGBA inputs are reduced with ITU-R 601 luma, as OpenCV does). */
export function readPngGray(file: string, expected?: { width: number; height: number }): GrayImage {
  if (!existsSync(file)) throw new InputError(file, undefined, 'PNG file is missing');
  let png: PNG;
  try {
    png = PNG.sync.read(readFileSync(file));
  } catch (err) {
    throw new InputError(file, undefined, `not a readable PNG (${(err as Error).message})`);
  }
  const { width, height } = png;
  if (expected && (width !== expected.width || height !== expected.height)) {
    throw new InputError(
      file,
      undefined,
      `image is ${width}x${height} (WxH), expected ${expected.width}x${expected.height} as given in the annotations`,
    );
  }
  // pngjs always decodes to RGBA 8-bit.
  const rgba = png.data;
  const data = new Uint8Array(width * height);
  for (let i = 0, p = 0; i < data.length; i++, p += 4) {
    const r = rgba[p]!;
    const g = rgba[p + 1]!;
    const b = rgba[p + 2]!;
    data[i] = r === g && g === b ? r : Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  }
  return { width, height, data };
}

export function encodePngGray(img: GrayImage): Buffer {
  if (img.data.length !== img.width * img.height) throw new Error('encodePngGray: data length does not match size');
  return PNG.sync.write(
    { width: img.width, height: img.height, data: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length) } as PNG,
    { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 },
  );
}

export function writePngGray(file: string, img: GrayImage): void {
  writeFileAtomic(file, encodePngGray(img));
}

export function writePngRgb(file: string, img: RgbImage): void {
  if (img.data.length !== img.width * img.height * 3) throw new Error('writePngRgb: data length does not match size');
  const buf = PNG.sync.write(
    { width: img.width, height: img.height, data: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length) } as PNG,
    { colorType: 2, inputColorType: 2, inputHasAlpha: false, bitDepth: 8 },
  );
  writeFileAtomic(file, buf);
}
