// PNG read/write through pngjs. Sartorius images are 8-bit grayscale 704x520; RGB is supported for
// figures and colour inputs (converted to gray as the notebooks' OpenCV reads give identical channels).
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { InputError } from '../../runtime/errors';
import { writeFileAtomic } from './atomic';
import { rgbaToGray } from './gray';
import { checkImageSize, checkInputFile } from './limits';

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
  const png = decodePngFile(file);
  const { width, height } = png;
  if (expected && (width !== expected.width || height !== expected.height)) {
    throw new InputError(
      file,
      undefined,
      `image is ${width}x${height} (WxH), expected ${expected.width}x${expected.height} as given in the annotations`,
    );
  }
  // pngjs always decodes to RGBA 8-bit.
  const data = rgbaToGray(png.data, width * height);
  return { width, height, data };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from the IHDR chunk (bytes 16..23), checked against the limits of io/limits.ts
 *  before anything is decoded. */
export function checkPngHeader(file: string, buf: Uint8Array): { width: number; height: number } {
  if (buf.length < 8 || PNG_SIGNATURE.some((b, i) => buf[i] !== b)) throw new InputError(file, undefined, 'not a readable PNG (no PNG signature: not a PNG file)');
  if (buf.length < 33) throw new InputError(file, undefined, `truncated PNG (${buf.length} bytes, the header alone needs 33)`);
  const ihdr = String.fromCharCode(buf[12]!, buf[13]!, buf[14]!, buf[15]!);
  if (ihdr !== 'IHDR') throw new InputError(file, undefined, 'not a valid PNG (the first chunk is not IHDR)');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  if (width === 0 || height === 0) throw new InputError(file, undefined, `not a valid PNG (size ${width}x${height})`);
  checkImageSize(file, 'PNG header', width, height);
  return { width, height };
}

/** Reads and decodes a PNG file: a missing file, a directory, an image over the size limits (from
 *  its header), a truncated or corrupt file are one-line InputErrors. */
export function decodePngFile(file: string): PNG {
  checkInputFile(file, undefined, 'PNG file');
  const buf = readFileSync(file);
  checkPngHeader(file, buf);
  try {
    const png = PNG.sync.read(buf);
    checkPngDataLength(file, buf);
    return png;
  } catch (err) {
    if (err instanceof InputError) throw err;
    const msg = (err as Error).message;
    // pngjs reports a file cut short as "unexpected end of file" / "Unexpected end of input" /
    // "There are some read requests waitng on finished stream" (sic) / "Incomplete ... data".
    if (/end of (file|input)|waitng|waiting|finished stream|incomplete|too short/i.test(msg)) {
      throw new InputError(file, undefined, `truncated PNG (${buf.length} bytes; the image data ends early)`);
    }
    throw new InputError(file, undefined, `not a readable PNG (${msg.split('\n')[0]})`);
  }
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: x0, y0, dx, dy. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

/**
 * pngjs decodes image data that ends early (IDAT cut short inside a valid zlib stream), and some
 * that is not zlib at all, without an error, as rows of zeros: a silently wrong image. So the IDAT
 * data must inflate, and hold every row (one filter byte + the row's bytes, per Adam7 pass when
 * interlaced).
 */
function checkPngDataLength(file: string, buf: Uint8Array): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  const bits = buf[24]! * (CHANNELS[buf[25]!] ?? 1);
  const interlaced = buf[28] === 1;
  const idat: Uint8Array[] = [];
  for (let p = 8; p + 8 <= buf.length; ) {
    const len = dv.getUint32(p);
    const type = String.fromCharCode(buf[p + 4]!, buf[p + 5]!, buf[p + 6]!, buf[p + 7]!);
    if (type === 'IDAT') idat.push(buf.subarray(p + 8, p + 8 + len));
    if (type === 'IEND') break;
    p += 12 + len;
  }
  const rowBytes = (w: number) => 1 + Math.ceil((w * bits) / 8);
  let expected = 0;
  if (!interlaced) expected = height * rowBytes(width);
  else {
    for (const [x0, y0, dx, dy] of ADAM7) {
      const w = Math.ceil((width - x0) / dx);
      const h = Math.ceil((height - y0) / dy);
      if (w > 0 && h > 0) expected += h * rowBytes(w);
    }
  }
  let got: number;
  try {
    got = inflateSync(Buffer.concat(idat), { finishFlush: 2 /* Z_SYNC_FLUSH: a stream cut short inflates as far as it goes */ }).length;
  } catch (err) {
    // pngjs returns an image of zeros for some streams that are not zlib at all
    throw new InputError(file, undefined, `corrupt PNG image data (${(err as Error).message})`);
  }
  if (got < expected) throw new InputError(file, undefined, `truncated PNG image data (${got} of ${expected} bytes after decompression; the image would read as zeros)`);
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
