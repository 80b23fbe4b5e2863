// The one image reader of the commands: a PNG or TIFF file (told apart by magic bytes, decoding
// rules in image-format.ts) as 8-bit gray.
import { readFileSync } from 'node:fs';
import { InputError } from '../../runtime/errors';
import { readPngGray, type GrayImage } from './png';
import { checkInputFile } from './limits';
import { checkSize, decodeTiffGray, imageFormatOf } from './image-format';

export { IMAGE_EXTENSIONS, decodeTiffGray, imageFormatOf, imageStem, isImageFileName, type ImageFormat } from './image-format';

/** Reads a PNG or TIFF (by magic bytes) as 8-bit gray; `expected` checks the size. */
export function readImageGray(file: string, expected?: { width: number; height: number }): GrayImage {
  checkInputFile(file, undefined, 'PNG or TIFF image file');
  const bytes = readFileSync(file);
  const format = imageFormatOf(bytes.subarray(0, 8));
  if (format === 'png') return readPngGray(file, expected);
  if (format === 'tiff') return checkSize(file, decodeTiffGray(bytes, file), expected);
  throw new InputError(file, undefined, 'not a PNG or TIFF image (unknown magic bytes)');
}
