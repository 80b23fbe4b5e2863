// The one image reader of the commands: PNG or TIFF, told apart by their magic bytes (not the file
// name), returned as 8-bit gray. TIFF (LIVECell's images, microscope exports) is decoded by UTIF.js
// (npm `utif`): uncompressed, LZW, Deflate, PackBits; strips or tiles; first image of the file.
// 8-bit gray is taken as is (WhiteIsZero inverted). 16-bit gray becomes 8-bit by `v >> 8` (the
// high byte), which is what OpenCV's cv2.imread does to a 16-bit image without IMREAD_ANYDEPTH
// (the original notebooks read images with it) and what skimage's img_as_ubyte does: intensities
// keep one fixed scale across images, as the model's fixed PIXEL_MEAN/PIXEL_STD expect (a per-image
// min-max stretch would not). Colour TIFFs are reduced with ITU-R 601 luma, as PNGs are.
// This file reads no files (the browser build uses it as it is); image.ts adds the file reader.
import UTIF from 'utif';
import { InputError } from '../../runtime/errors';
import type { GrayImage } from './png';

/** The extension of a file name, dot included ('' when none), as node:path's extname. */
const extname = (name: string): string => {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot) : '';
};
import { checkImageSize } from './limits';
import { rgbaToGray } from './gray';

/** File name extensions listed as images in folders (case-insensitive). */
export const IMAGE_EXTENSIONS = ['.png', '.tif', '.tiff'] as const;

export function isImageFileName(name: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());
}

/** The name without its image extension (`a.tif` -> `a`); other names unchanged. */
export function imageStem(name: string): string {
  return isImageFileName(name) ? name.slice(0, -extname(name).length) : name;
}

export type ImageFormat = 'png' | 'tiff';

export function imageFormatOf(head: Uint8Array): ImageFormat | null {
  if (head.length >= 8 && head[0] === 0x89 && head[1] === 0x50 && head[2] === 0x4e && head[3] === 0x47) return 'png';
  if (head.length >= 4 && ((head[0] === 0x49 && head[1] === 0x49 && head[2] === 42 && head[3] === 0) || (head[0] === 0x4d && head[1] === 0x4d && head[2] === 0 && head[3] === 42))) return 'tiff';
  return null;
}

/**
 * Width and height as a PNG (IHDR) or JPEG (first SOFn marker) header declares them, read without
 * decoding; null for other formats or a header cut short. Lets a reader refuse a huge image before
 * a decoder allocates it.
 */
export function declaredImageSize(head: Uint8Array): { width: number; height: number } | null {
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (imageFormatOf(head) === 'png') {
    return head.length >= 24 ? { width: dv.getUint32(16), height: dv.getUint32(20) } : null;
  }
  if (head.length < 4 || head[0] !== 0xff || head[1] !== 0xd8) return null;
  // JPEG: walk the marker segments (FFxx + 16-bit length) to the first start-of-frame.
  let p = 2;
  while (p + 4 <= head.length) {
    if (head[p] !== 0xff) return null;
    const marker = head[p + 1]!;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return p + 9 <= head.length ? { width: dv.getUint16(p + 7), height: dv.getUint16(p + 5) } : null;
    if (marker === 0xd9 || marker === 0xda) return null; // end of image / scan data before a frame header
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2; // markers without a length
      continue;
    }
    p += 2 + dv.getUint16(p + 2);
  }
  return null;
}

export function checkSize(file: string, img: GrayImage, expected?: { width: number; height: number }): GrayImage {
  if (expected && (img.width !== expected.width || img.height !== expected.height)) {
    throw new InputError(file, undefined, `image is ${img.width}x${img.height} (WxH), expected ${expected.width}x${expected.height} as given in the annotations`);
  }
  return img;
}

/** A TIFF file's first image as 8-bit gray (rules in the header comment). */
export function decodeTiffGray(bytes: Uint8Array, file = '<tiff>'): GrayImage {
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let ifd: UTIF.IFD | undefined;
  try {
    ifd = UTIF.decode(buf).find((d) => d['t256'] !== undefined);
    if (ifd) {
      // The size from the tags, checked before the pixels are decoded (a small file may declare a huge image).
      const w = Array.isArray(ifd['t256']) ? Number(ifd['t256'][0]) : 0;
      const h = Array.isArray(ifd['t257']) ? Number(ifd['t257'][0]) : 0;
      checkImageSize(file, undefined, w, h);
      UTIF.decodeImage(buf, ifd);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(file, undefined, `not a readable TIFF (${(err as Error).message})`);
  }
  if (!ifd?.data || !(ifd.width > 0) || !(ifd.height > 0)) throw new InputError(file, undefined, 'TIFF file has no image');
  const { width, height } = ifd;
  const tag = (k: string, dflt: number): number => {
    const v = ifd![k];
    return Array.isArray(v) && typeof v[0] === 'number' ? v[0] : dflt;
  };
  const photometric = tag('t262', 1);
  const samples = tag('t277', 1);
  const bits = tag('t258', 1);
  const n = width * height;
  const data = new Uint8Array(n);
  const src = ifd.data;
  if (samples === 1 && (photometric === 0 || photometric === 1) && (bits === 8 || bits === 16)) {
    const bpp = bits / 8;
    if (src.length < n * bpp) throw new InputError(file, undefined, `TIFF image data is truncated (${src.length} bytes for ${width}x${height} at ${bits} bits)`);
    // UTIF leaves 16-bit samples little-endian whatever the file's byte order: the high byte is the second.
    if (bits === 8) data.set(src.subarray(0, n));
    else for (let i = 0; i < n; i++) data[i] = src[2 * i + 1]!;
    if (photometric === 0) for (let i = 0; i < n; i++) data[i] = 255 - data[i]!;
    return { width, height, data };
  }
  if (samples === 1 && !(bits === 1 || bits === 2 || bits === 4 || bits === 8 || bits === 16) && photometric !== 3) {
    throw new InputError(file, undefined, `TIFF with ${bits}-bit samples is not supported (8- or 16-bit gray, or RGB)`);
  }
  return { width, height, data: rgbaToGray(UTIF.toRGBA8(ifd), n) };
}

