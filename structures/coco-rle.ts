// COCO run-length encoding as pycocotools (common/maskApi.c) defines it: counts alternate
// background/foreground run lengths, starting with background, over the pixels in COLUMN-major
// (Fortran) order; `size` is [height, width]. Ported so the numbers match pycocotools exactly:
// compressed strings, area, toBbox (with its quirk), IoU, merge and polygon rasterisation.
import type { MaskCrop } from './mask-crop';

export interface CocoRle {
  height: number;
  width: number;
  counts: number[];
}

/** The JSON form: counts as a compressed string (what pycocotools writes) or a plain list. */
export interface CocoRleJson {
  size: [number, number];
  counts: string | number[];
}

/** XYWH box in pixels. */
export type Bbox = [number, number, number, number];

export class CocoRleError extends Error {}

/** Counts from 0-based column-major foreground runs (ascending, non-overlapping); adjacent runs merge. */
function countsFromColumnRuns(starts: number[], lengths: number[], total: number): number[] {
  const counts: number[] = [];
  let pos = 0;
  for (let k = 0; k < starts.length; k++) {
    const s = starts[k]!;
    const len = lengths[k]!;
    if (counts.length > 0 && s === pos) {
      counts[counts.length - 1]! += len; // continues the previous foreground run
    } else {
      counts.push(s - pos, len);
    }
    pos = s + len;
  }
  if (pos < total || counts.length === 0) counts.push(total - pos);
  return counts;
}

/** COCO RLE of a row-major full-image mask (any non-zero byte is foreground). */
export function encodeCocoRle(mask: Uint8Array, height: number, width: number): CocoRle {
  const counts: number[] = [];
  let prev = 0;
  let c = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== prev) {
        counts.push(c);
        c = 0;
        prev = v;
      }
      c++;
    }
  }
  counts.push(c);
  return { height, width, counts };
}

/** COCO RLE of a crop (cost proportional to the crop, not the image). */
export function cropToCocoRle(crop: MaskCrop): CocoRle {
  const h = crop.imageHeight;
  const starts: number[] = [];
  const lengths: number[] = [];
  for (let x = 0; x < crop.width; x++) {
    const colBase = (crop.x0 + x) * h + crop.y0;
    let y = 0;
    while (y < crop.height) {
      if (!crop.data[y * crop.width + x]) {
        y++;
        continue;
      }
      const ys = y;
      while (y < crop.height && crop.data[y * crop.width + x]) y++;
      starts.push(colBase + ys);
      lengths.push(y - ys);
    }
  }
  return { height: h, width: crop.imageWidth, counts: countsFromColumnRuns(starts, lengths, h * crop.imageWidth) };
}

/** Row-major full-image mask. */
export function decodeCocoRle(rle: CocoRle): Uint8Array {
  const { height: h, width: w } = rle;
  const mask = new Uint8Array(h * w);
  let idx = 0;
  let v = 0;
  for (const c of rle.counts) {
    if (v) {
      for (let k = 0; k < c; k++, idx++) {
        const x = Math.floor(idx / h);
        mask[(idx - x * h) * w + x] = 1;
      }
    } else idx += c;
    v ^= 1;
  }
  return mask;
}

/** Crop covering the mask's bounding box (cost proportional to the foreground plus the box). */
export function cocoRleToCrop(rle: CocoRle): MaskCrop {
  const [bx, by, bw, bh] = cocoRleToBbox(rle);
  const crop: MaskCrop = {
    imageWidth: rle.width,
    imageHeight: rle.height,
    x0: bx,
    y0: by,
    width: bw,
    height: bh,
    data: new Uint8Array(bw * bh),
  };
  const h = rle.height;
  let idx = 0;
  let v = 0;
  for (const c of rle.counts) {
    if (v) {
      for (let k = 0; k < c; k++, idx++) {
        const x = Math.floor(idx / h);
        crop.data[(idx - x * h - by) * bw + (x - bx)] = 1;
      }
    } else idx += c;
    v ^= 1;
  }
  return crop;
}

/** pycocotools rleToString: LEB128-like, 5 data bits per char, chars 48..111, counts[i] delta-coded against counts[i-2] for i > 2. */
export function cocoRleToString(rle: CocoRle): string {
  let s = '';
  const cnts = rle.counts;
  for (let i = 0; i < cnts.length; i++) {
    let x = cnts[i]!;
    if (i > 2) x -= cnts[i - 2]!;
    let more = true;
    while (more) {
      let c = ((x % 32) + 32) % 32; // x & 0x1f for negative x too
      x = Math.floor(x / 32); // arithmetic shift right by 5
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** pycocotools rleFrString, validating the characters and that the counts cover exactly h*w pixels. */
export function cocoRleFromString(s: string, height: number, width: number): CocoRle {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new CocoRleError(`compressed counts end inside a value at character ${p + 1}`);
      const code = s.charCodeAt(p) - 48;
      if (code < 0 || code > 63) {
        throw new CocoRleError(`character '${s[p]}' at position ${p + 1} is outside the RLE alphabet ('0'..'o')`);
      }
      x += (code & 0x1f) * 2 ** (5 * k);
      more = (code & 0x20) !== 0;
      p++;
      k++;
      if (!more && code & 0x10) x -= 2 ** (5 * k); // sign extension
    }
    if (counts.length > 2) x += counts[counts.length - 2]!;
    if (x < 0) throw new CocoRleError(`count ${counts.length + 1} decodes to a negative value (${x})`);
    counts.push(x);
  }
  const rle = { height, width, counts };
  checkCocoRle(rle);
  return rle;
}

/** Counts must be non-negative integers summing to height*width. */
export function checkCocoRle(rle: CocoRle): void {
  let total = 0;
  for (let i = 0; i < rle.counts.length; i++) {
    const c = rle.counts[i]!;
    if (!Number.isInteger(c) || c < 0) throw new CocoRleError(`count ${i + 1} (${c}) is not a non-negative integer`);
    total += c;
  }
  if (total !== rle.height * rle.width) {
    throw new CocoRleError(
      `counts sum to ${total} pixels but size [${rle.height}, ${rle.width}] has ${rle.height * rle.width}`,
    );
  }
}

export function cocoRleToJson(rle: CocoRle): CocoRleJson {
  return { size: [rle.height, rle.width], counts: cocoRleToString(rle) };
}

export function cocoRleFromJson(obj: CocoRleJson): CocoRle {
  const [h, w] = obj.size;
  if (typeof obj.counts === 'string') return cocoRleFromString(obj.counts, h, w);
  const rle = { height: h, width: w, counts: obj.counts.slice() };
  checkCocoRle(rle);
  return rle;
}

export function cocoRleArea(rle: CocoRle): number {
  let a = 0;
  for (let j = 1; j < rle.counts.length; j += 2) a += rle.counts[j]!;
  return a;
}

/**
 * pycocotools rleToBbox, including its quirk: a run that wraps from one column into the next makes
 * the box span the full image height; an odd trailing count is ignored.
 */
export function cocoRleToBbox(rle: CocoRle): Bbox {
  const h = rle.height;
  const w = rle.width;
  const m = Math.floor(rle.counts.length / 2) * 2;
  if (m === 0) return [0, 0, 0, 0];
  let xs = w;
  let ys = h;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  let xp = 0;
  for (let j = 0; j < m; j++) {
    cc += rle.counts[j]!;
    const t = cc - (j % 2);
    const y = t % h;
    const x = (t - y) / h;
    if (j % 2 === 0) xp = x;
    else if (xp < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = Math.min(xs, x);
    xe = Math.max(xe, x);
    ys = Math.min(ys, y);
    ye = Math.max(ye, y);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

/** pycocotools bbIou: IoU matrix [dt][gt] of XYWH boxes; for crowd gts the union is the dt area. */
export function bboxIou(dt: readonly Bbox[], gt: readonly Bbox[], iscrowd: readonly boolean[]): number[][] {
  const out: number[][] = [];
  for (let d = 0; d < dt.length; d++) {
    const D = dt[d]!;
    const da = D[2] * D[3];
    const row = new Array<number>(gt.length).fill(0);
    for (let g = 0; g < gt.length; g++) {
      const G = gt[g]!;
      const ga = G[2] * G[3];
      const wI = Math.min(D[2] + D[0], G[2] + G[0]) - Math.max(D[0], G[0]);
      if (wI <= 0) continue;
      const hI = Math.min(D[3] + D[1], G[3] + G[1]) - Math.max(D[1], G[1]);
      if (hI <= 0) continue;
      const i = wI * hI;
      const u = iscrowd[g] ? da : da + ga - i;
      row[g] = i / u;
    }
    out.push(row);
  }
  return out;
}

/** Intersection and union pixel counts of two RLEs of the same size (run merge, as rleIou). */
export function cocoRleIntersectUnion(a: CocoRle, b: CocoRle): { inter: number; union: number } {
  const A = a.counts;
  const B = b.counts;
  let ca = A[0]!;
  let cb = B[0]!;
  let va = 0;
  let vb = 0;
  let ia = 1;
  let ib = 1;
  let inter = 0;
  let union = 0;
  let ct = 1;
  while (ct > 0) {
    const c = Math.min(ca, cb);
    if (va || vb) {
      union += c;
      if (va && vb) inter += c;
    }
    ct = 0;
    ca -= c;
    if (!ca && ia < A.length) {
      ca = A[ia++]!;
      va ^= 1;
    }
    ct += ca;
    cb -= c;
    if (!cb && ib < B.length) {
      cb = B[ib++]!;
      vb ^= 1;
    }
    ct += cb;
  }
  return { inter, union };
}

/** pycocotools rleIou: IoU matrix [dt][gt]; boxes are checked first; crowd gt: union = dt area. */
export function cocoRleIou(dt: readonly CocoRle[], gt: readonly CocoRle[], iscrowd: readonly boolean[]): number[][] {
  const db = dt.map(cocoRleToBbox);
  const gb = gt.map(cocoRleToBbox);
  const o = bboxIou(db, gb, iscrowd);
  for (let d = 0; d < dt.length; d++) {
    for (let g = 0; g < gt.length; g++) {
      if (!(o[d]![g]! > 0)) continue;
      if (dt[d]!.height !== gt[g]!.height || dt[d]!.width !== gt[g]!.width) {
        o[d]![g] = -1;
        continue;
      }
      const iu = cocoRleIntersectUnion(dt[d]!, gt[g]!);
      const inter = iu.inter;
      let union = iu.union;
      if (inter === 0) union = 1;
      else if (iscrowd[g]) union = cocoRleArea(dt[d]!);
      o[d]![g] = inter / union;
    }
  }
  return o;
}

/** pycocotools rleMerge: union (or intersection) of RLEs of the same size. */
export function cocoRleMerge(rles: readonly CocoRle[], intersect = false): CocoRle {
  if (rles.length === 0) return { height: 0, width: 0, counts: [] };
  const h = rles[0]!.height;
  const w = rles[0]!.width;
  let cnts = rles[0]!.counts.slice();
  for (let i = 1; i < rles.length; i++) {
    const B = rles[i]!;
    if (B.height !== h || B.width !== w) throw new CocoRleError('cannot merge RLEs of different sizes');
    const A = cnts;
    const out: number[] = [];
    let ca = A[0]!;
    let cb = B.counts[0]!;
    let v = 0;
    let va = 0;
    let vb = 0;
    let a = 1;
    let b = 1;
    let cc = 0;
    let ct = 1;
    while (ct > 0) {
      const c = Math.min(ca, cb);
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && a < A.length) {
        ca = A[a++]!;
        va ^= 1;
      }
      ct += ca;
      cb -= c;
      if (!cb && b < B.counts.length) {
        cb = B.counts[b++]!;
        vb ^= 1;
      }
      ct += cb;
      const vp = v;
      v = intersect ? va & vb : va | vb;
      if (v !== vp || ct === 0) {
        out.push(cc);
        cc = 0;
      }
    }
    cnts = out;
  }
  return { height: h, width: w, counts: cnts };
}

/** pycocotools rleFrPoly: rasterises one polygon [x1,y1,x2,y2,...] (pixel centres at integer+0.5 semantics of COCO). */
export function cocoRleFromPolygon(xy: readonly number[], height: number, width: number): CocoRle {
  const k = Math.floor(xy.length / 2);
  const scale = 5;
  const x = new Array<number>(k + 1);
  const y = new Array<number>(k + 1);
  for (let j = 0; j < k; j++) x[j] = Math.trunc(scale * xy[j * 2]! + 0.5);
  x[k] = x[0]!;
  for (let j = 0; j < k; j++) y[j] = Math.trunc(scale * xy[j * 2 + 1]! + 0.5);
  y[k] = y[0]!;
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j]!;
    let xe = x[j + 1]!;
    let ys = y[j]!;
    let ye = y[j + 1]!;
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      let t = xs;
      xs = xe;
      xe = t;
      t = ys;
      ys = ye;
      ye = t;
    }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // points along the y-boundary, downsampled
  const bx: number[] = [];
  const by: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j]! < u[j - 1]! ? u[j]! : u[j]! - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > width - 1) continue;
    let yd = v[j]! < v[j - 1]! ? v[j]! : v[j - 1]!;
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > height) yd = height;
    yd = Math.ceil(yd);
    bx.push(xd);
    by.push(yd);
  }
  const a: number[] = bx.map((xx, j) => xx * height + by[j]!);
  a.push(height * width);
  a.sort((p, q) => p - q);
  let prev = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j]!;
    a[j] = t - prev;
    prev = t;
  }
  const b: number[] = [];
  let j = 0;
  b.push(a[j++]!);
  while (j < a.length) {
    if (a[j]! > 0) b.push(a[j++]!);
    else {
      j++;
      if (j < a.length) b[b.length - 1]! += a[j++]!;
    }
  }
  return { height, width, counts: b };
}

/** A COCO `segmentation` field (polygon list, uncompressed or compressed RLE) as one RLE, as COCO.annToRLE does. */
export function segmentationToCocoRle(seg: unknown, height: number, width: number): CocoRle {
  if (Array.isArray(seg)) {
    const polys = seg.map((p) => cocoRleFromPolygon(p as number[], height, width));
    return cocoRleMerge(polys, false);
  }
  const obj = seg as CocoRleJson;
  if (typeof obj.counts === 'string') return cocoRleFromString(obj.counts, obj.size[0], obj.size[1]);
  // Uncompressed counts go through frPyObjects with the image's size, as pycocotools does.
  const rle = { height, width, counts: obj.counts.slice() };
  checkCocoRle(rle);
  return rle;
}
