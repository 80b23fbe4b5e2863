// The browser stand-in for pipeline/io/image.ts (image files through node:fs), swapped in by
// web/build.mjs: the format detection and TIFF decoding are the library's own (image-format.ts);
// reading a file by name is Node's only (the page decodes images with createImageBitmap).
import type { GrayImage } from '../../pipeline/io/png';

export { IMAGE_EXTENSIONS, decodeTiffGray, imageFormatOf, imageStem, isImageFileName, type ImageFormat } from '../../pipeline/io/image-format';

export function readImageGray(file: string, _expected?: { width: number; height: number }): GrayImage {
  throw new Error(`readImageGray(${file}) reads an image file, which only the Node build does; in the page, images are decoded with createImageBitmap`);
}
