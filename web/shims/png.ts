// The browser stand-in for pipeline/io/png.ts (PNG files through pngjs and node:fs), swapped in
// by web/build.mjs. A page has no files: it decodes images with createImageBitmap
// (web/lib/core.ts decodeImage) and hands pixels to the library. The library's one reference
// that stays in the bundle is TrainLoader's default image reader, which the page replaces.
import type { GrayImage, RgbImage } from '../../pipeline/io/png';
export type { GrayImage, RgbImage };

const nodeOnly = (what: string): never => {
  throw new Error(`${what} reads or writes PNG files, which only the Node build does; in the page, images are decoded with createImageBitmap`);
};
export function readPngGray(file: string, _expected?: { width: number; height: number }): GrayImage {
  return nodeOnly(`readPngGray(${file})`);
}
export function encodePngGray(_img: GrayImage): Uint8Array {
  return nodeOnly('encodePngGray');
}
export function writePngGray(file: string, _img: GrayImage): void {
  nodeOnly(`writePngGray(${file})`);
}
export function writePngRgb(file: string, _img: RgbImage): void {
  nodeOnly(`writePngRgb(${file})`);
}
