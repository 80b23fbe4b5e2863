// Instance masks over a grayscale image as a coloured overlay: every instance is filled with its
// class colour (shsy5y orange, astro green, cort blue; COCO category ids 1/2/3 as
// pipeline/data/cell-types.ts), alpha-blended over the image, and outlined with a 1-px contour
// (mask pixels with a 4-neighbour outside the mask or the image). Instances are drawn in
// ascending score, so where masks overlap the most confident is on top. Masks may come in any
// form the pipeline uses: a MaskCrop (PredictedInstance.mask), a full-image row-major 0/1 mask, a
// CocoRle, or the COCO results JSON form {size: [h, w], counts}.
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { InputError, UserError } from '../../runtime/errors';
import type { CocoResult } from '../data/coco/types';
import { cellTypeOfCategory } from '../data/cell-types';
import { cocoRleFromJson, cocoRleToCrop, type CocoRle, type CocoRleJson } from '../../structures/coco-rle';
import { maskToCrop, type MaskCrop } from '../../structures/mask-crop';
import { imageStem, isImageFileName, readImageGray } from '../io/image';
import { readJsonFile } from '../io/json';
import { textHeight, textWidth } from './font';
import { writePngRgba } from './png';
import { Canvas, type Rgb } from './raster';

export type OverlayMask = MaskCrop | Uint8Array | CocoRle | CocoRleJson;

export interface OverlayInstance {
  /** COCO category id: 1 shsy5y, 2 astro, 3 cort (others get a grey). */
  categoryId: number;
  mask: OverlayMask;
  score?: number;
}

export interface OverlayOptions {
  /** Fill opacity, 0..1 (default 0.4). */
  alpha?: number;
  /** Draw the 1-px contour (default true). */
  contour?: boolean;
  /** Leave out instances whose score is below this (instances without a score are kept). */
  scoreThresh?: number;
  /** Colour per category id (default CLASS_COLORS). */
  colors?: Record<number, Rgb>;
  /** Stretch the image's 0.5..99.5 percentile gray range to 0..255 first (default false). */
  stretch?: boolean;
  /** Draw a small class legend with instance counts in the top-left corner (default true). */
  legend?: boolean;
}

/** shsy5y, astro, cort by COCO category id. */
export const CLASS_COLORS: Record<number, Rgb> = { 1: [255, 140, 0], 2: [40, 200, 70], 3: [40, 140, 255] };
const OTHER: Rgb = [200, 200, 200];

/** A MaskCrop of any of the mask forms, checked to belong to a width x height image. */
export function toMaskCrop(mask: OverlayMask, width: number, height: number, where = 'mask'): MaskCrop {
  let crop: MaskCrop;
  if (mask instanceof Uint8Array) {
    if (mask.length !== width * height) throw new Error(`${where}: a full-image mask of ${mask.length} pixels for a ${width}x${height} image`);
    crop = maskToCrop(mask, width, height);
  } else if ('imageWidth' in mask) crop = mask;
  else if ('size' in mask) crop = cocoRleToCrop(cocoRleFromJson(mask));
  else crop = cocoRleToCrop(mask);
  if (crop.imageWidth !== width || crop.imageHeight !== height) {
    throw new Error(`${where}: the mask belongs to a ${crop.imageWidth}x${crop.imageHeight} image, not ${width}x${height}`);
  }
  return crop;
}

function stretchLut(gray: Uint8Array): Uint8Array {
  const hist = new Float64Array(256);
  for (let i = 0; i < gray.length; i++) hist[gray[i]!]++;
  const lo = gray.length * 0.005;
  const hi = gray.length * 0.995;
  let a = 0;
  let b = 255;
  let acc = 0;
  for (let v = 0; v < 256; v++) {
    if (acc <= lo) a = v;
    acc += hist[v]!;
    if (acc < hi) b = v + 1;
  }
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) lut[v] = b > a ? Math.max(0, Math.min(255, Math.round(((v - a) * 255) / (b - a)))) : v;
  return lut;
}

/** The overlay as row-major RGBA (opaque). */
export function overlayInstances(gray: Uint8Array, width: number, height: number, instances: readonly OverlayInstance[], opts: OverlayOptions = {}): Uint8Array {
  if (gray.length !== width * height) throw new Error(`overlayInstances: ${gray.length} gray pixels for a ${width}x${height} image`);
  const alpha = opts.alpha ?? 0.4;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`overlayInstances: alpha must be in [0, 1], got ${alpha}`);
  const colors = opts.colors ?? CLASS_COLORS;
  const cv = new Canvas(width, height);
  const rgba = cv.rgba;
  const lut = opts.stretch ? stretchLut(gray) : null;
  for (let i = 0, p = 0; i < gray.length; i++, p += 4) {
    const v = lut ? lut[gray[i]!]! : gray[i]!;
    rgba[p] = rgba[p + 1] = rgba[p + 2] = v;
    rgba[p + 3] = 255;
  }
  const kept = instances
    .map((inst, i) => ({ inst, i }))
    .filter(({ inst }) => opts.scoreThresh === undefined || inst.score === undefined || inst.score >= opts.scoreThresh)
    .sort((a, b) => (a.inst.score ?? Infinity) - (b.inst.score ?? Infinity) || a.i - b.i);
  const counts = new Map<number, number>();
  for (const { inst, i } of kept) {
    const c = toMaskCrop(inst.mask, width, height, `instance ${i}`);
    const color = colors[inst.categoryId] ?? OTHER;
    counts.set(inst.categoryId, (counts.get(inst.categoryId) ?? 0) + 1);
    const on = (x: number, y: number) => x >= 0 && y >= 0 && x < c.width && y < c.height && c.data[y * c.width + x] !== 0;
    for (let y = 0; y < c.height; y++) {
      for (let x = 0; x < c.width; x++) {
        if (!c.data[y * c.width + x]) continue;
        const gx = c.x0 + x;
        const gy = c.y0 + y;
        const edge = (opts.contour ?? true) && (!on(x - 1, y) || !on(x + 1, y) || !on(x, y - 1) || !on(x, y + 1));
        cv.plot(gx, gy, color, edge ? 1 : alpha);
      }
    }
  }
  if (opts.legend ?? true) drawLegend(cv, counts, colors);
  return rgba;
}

function drawLegend(cv: Canvas, counts: Map<number, number>, colors: Record<number, Rgb>): void {
  const ids = [...new Set([1, 2, 3, ...counts.keys()])].sort((a, b) => a - b).filter((id) => id <= 3 || counts.has(id));
  const s = cv.width >= 600 ? 2 : 1;
  const rows = ids.map((id) => `${cellTypeOfCategory(id) ?? `class ${id}`} ${counts.get(id) ?? 0}`);
  const th = textHeight(s);
  const w = Math.max(...rows.map((r) => textWidth(r, s))) + 18 * s;
  const h = rows.length * (th + 5 * s) + 5 * s;
  if (w + 4 > cv.width || h + 4 > cv.height) return; // image too small for a legend
  cv.fillRect(4, 4, w, h, [0, 0, 0], 0.6);
  rows.forEach((r, i) => {
    const y = 4 + 5 * s + i * (th + 5 * s);
    cv.fillRect(4 + 4 * s, y, th, th, colors[ids[i]!] ?? OTHER);
    cv.text(4 + 4 * s + th + 5 * s, y, r, [255, 255, 255], s);
  });
}

/** Writes the overlay PNG (RGB) atomically. */
export function writeOverlayPng(file: string, gray: Uint8Array, width: number, height: number, instances: readonly OverlayInstance[], opts: OverlayOptions = {}): void {
  writePngRgba(file, { width, height, rgba: overlayInstances(gray, width, height, instances, opts) });
}

/**
 * The image id of `image` in a COCO results list, and how it was found: `imageId` when given; else
 * the image of `coco` (a COCO json, e.g. test_images.json or a fold's annotations) whose file_name
 * has the same base name; else the only id the results hold; else its position among the sorted
 * images (PNG, TIFF) of its folder (as `cellseg predict --images DIR` numbers them, from 1).
 */
export function resolveImageId(image: string, results: readonly CocoResult[], o: { imageId?: number; coco?: string } = {}): { id: number; how: string } {
  if (o.imageId !== undefined) return { id: o.imageId, how: '--image-id' };
  const name = basename(image);
  if (o.coco) {
    const ds = readJsonFile(o.coco);
    const images = (ds as { images?: unknown }).images;
    if (!Array.isArray(images)) throw new InputError(o.coco, undefined, 'has no "images" list');
    const hit = images.find((im: { file_name?: unknown }) => typeof im?.file_name === 'string' && basename(im.file_name) === name) as { id?: unknown } | undefined;
    if (!hit || typeof hit.id !== 'number') throw new InputError(o.coco, 'images', `no image with file name ${name}`);
    return { id: hit.id, how: `file name in ${basename(o.coco)}` };
  }
  const ids = new Set(results.map((r) => r.image_id));
  if (ids.size <= 1) return { id: ids.size === 1 ? [...ids][0]! : 1, how: 'the only image in the results' };
  const dir = dirname(image);
  // sorted by id (the name without extension), as listImageFiles sorts them
  const pngs = existsSync(dir) ? readdirSync(dir).filter(isImageFileName).map(imageStem).sort() : [];
  const idx = pngs.indexOf(imageStem(name));
  if (idx < 0) throw new UserError(`${image}: the results hold ${ids.size} images; give --image-id or --coco`);
  return { id: idx + 1, how: `position among the sorted images of ${dir}, as predict --images DIR numbers them` };
}

export interface OverlayFileSummary {
  imageId: number;
  /** How the image id was found (see resolveImageId). */
  idFrom: string;
  drawn: number;
  total: number;
}

/** `cellseg overlay`: reads a PNG and a COCO results JSON, draws the image's instances. */
export function writeOverlayFromFiles(o: { image: string; pred: string; out: string; imageId?: number; coco?: string } & OverlayOptions): OverlayFileSummary {
  const img = readImageGray(o.image);
  const raw = readJsonFile(o.pred);
  if (!Array.isArray(raw)) throw new InputError(o.pred, undefined, 'must be a COCO results list [{image_id, category_id, score, segmentation}]');
  const results = raw as CocoResult[];
  results.forEach((r, i) => {
    if (typeof r !== 'object' || r === null || typeof r.image_id !== 'number' || typeof r.category_id !== 'number') {
      throw new InputError(o.pred, `result [${i}]`, 'needs numeric image_id and category_id');
    }
  });
  const { id: imageId, how: idFrom } = resolveImageId(o.image, results, o);
  const instances: OverlayInstance[] = [];
  let total = 0;
  results.forEach((r, i) => {
    if (r.image_id !== imageId) return;
    total++;
    const seg = r.segmentation;
    if (!seg || Array.isArray(seg) || !Array.isArray(seg.size)) throw new InputError(o.pred, `result [${i}]`, 'segmentation must be COCO RLE {size, counts}');
    const [h, w] = seg.size;
    if (h !== img.height || w !== img.width) {
      throw new InputError(o.pred, `result [${i}]`, `segmentation size [${h}, ${w}] does not match ${o.image} (${img.height}x${img.width}, HxW); wrong --image-id?`);
    }
    let mask: MaskCrop;
    try {
      mask = toMaskCrop(seg, img.width, img.height);
    } catch (err) {
      throw new InputError(o.pred, `result [${i}].segmentation`, (err as Error).message);
    }
    instances.push({ categoryId: r.category_id, score: r.score, mask });
  });
  const drawn = instances.filter((x) => o.scoreThresh === undefined || x.score === undefined || x.score >= o.scoreThresh).length;
  writeOverlayPng(o.out, img.data, img.width, img.height, instances, o);
  return { imageId, idFrom, drawn, total };
}
