// A binary instance mask stored only inside its bounding box: per-instance work (shape features,
// overlap removal, fusion) then costs the instance's area, not the whole 704x520 image.
import { runsBounds, type Runs } from './rle';

export interface MaskCrop {
  /** Size of the full image the crop lives in. */
  imageWidth: number;
  imageHeight: number;
  /** Top-left corner of the crop in the image. */
  x0: number;
  y0: number;
  width: number;
  height: number;
  /** Row-major over the crop, 0/1. */
  data: Uint8Array;
}

export function emptyCrop(imageWidth: number, imageHeight: number): MaskCrop {
  return { imageWidth, imageHeight, x0: 0, y0: 0, width: 0, height: 0, data: new Uint8Array(0) };
}

export function cropArea(c: MaskCrop): number {
  let a = 0;
  for (let i = 0; i < c.data.length; i++) a += c.data[i]!;
  return a;
}

export function runsToCrop(runs: Runs, imageWidth: number, imageHeight: number): MaskCrop {
  const b = runsBounds(runs, imageWidth);
  if (!b) return emptyCrop(imageWidth, imageHeight);
  const width = b.x1 - b.x0 + 1;
  const height = b.y1 - b.y0 + 1;
  const data = new Uint8Array(width * height);
  for (let k = 0; k < runs.starts.length; k++) {
    let p = runs.starts[k]!;
    const end = p + runs.lengths[k]!;
    while (p < end) {
      const row = Math.floor(p / imageWidth);
      const col = p - row * imageWidth;
      const rowEnd = Math.min(end, (row + 1) * imageWidth);
      const off = (row - b.y0) * width + (col - b.x0);
      data.fill(1, off, off + (rowEnd - p));
      p = rowEnd;
    }
  }
  return { imageWidth, imageHeight, x0: b.x0, y0: b.y0, width, height, data };
}

/** Row-major runs of a crop in image coordinates. */
export function cropToRuns(c: MaskCrop): Runs {
  const s: number[] = [];
  const l: number[] = [];
  let curS = -1;
  let curE = -1;
  for (let y = 0; y < c.height; y++) {
    const rowBase = (c.y0 + y) * c.imageWidth + c.x0;
    let x = 0;
    while (x < c.width) {
      if (c.data[y * c.width + x] === 0) {
        x++;
        continue;
      }
      const xs = x;
      while (x < c.width && c.data[y * c.width + x] !== 0) x++;
      const st = rowBase + xs;
      const en = rowBase + x;
      if (st === curE) curE = en; // continues across a row boundary of a full-width crop
      else {
        if (curS >= 0) {
          s.push(curS);
          l.push(curE - curS);
        }
        curS = st;
        curE = en;
      }
    }
  }
  if (curS >= 0) {
    s.push(curS);
    l.push(curE - curS);
  }
  return { starts: Int32Array.from(s), lengths: Int32Array.from(l) };
}

/** Full-image row-major mask from a crop. */
export function cropToMask(c: MaskCrop): Uint8Array {
  const m = new Uint8Array(c.imageWidth * c.imageHeight);
  for (let y = 0; y < c.height; y++) {
    m.set(c.data.subarray(y * c.width, (y + 1) * c.width), (c.y0 + y) * c.imageWidth + c.x0);
  }
  return m;
}

/** Crop of a full-image mask to its bounding box (empty crop if the mask is empty). */
export function maskToCrop(mask: Uint8Array, imageWidth: number, imageHeight: number): MaskCrop {
  let x0 = imageWidth;
  let y0 = imageHeight;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < imageHeight; y++) {
    const base = y * imageWidth;
    for (let x = 0; x < imageWidth; x++) {
      if (mask[base + x]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  if (x1 < 0) return emptyCrop(imageWidth, imageHeight);
  const width = x1 - x0 + 1;
  const height = y1 - y0 + 1;
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data[y * width + x] = mask[(y0 + y) * imageWidth + x0 + x] ? 1 : 0;
  }
  return { imageWidth, imageHeight, x0, y0, width, height, data };
}

/** Shrinks a crop to the bounding box of its foreground (after pixels were removed). */
export function tightenCrop(c: MaskCrop): MaskCrop {
  let x0 = c.width;
  let y0 = c.height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      if (c.data[y * c.width + x]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  if (x1 < 0) return emptyCrop(c.imageWidth, c.imageHeight);
  if (x0 === 0 && y0 === 0 && x1 === c.width - 1 && y1 === c.height - 1) return c;
  const width = x1 - x0 + 1;
  const height = y1 - y0 + 1;
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) data.set(c.data.subarray((y0 + y) * c.width + x0, (y0 + y) * c.width + x0 + width), y * width);
  return { ...c, x0: c.x0 + x0, y0: c.y0 + y0, width, height, data };
}
