// Reads and validates COCO JSON (ground truth, including LIVECell's variant whose `annotations` is
// an object keyed by annotation id) and COCO results JSON. Every problem names the file and the
// offending image/annotation id or list index.
import { InputError } from '../../../runtime/errors';
import { CocoRleError, segmentationToCocoRle, cocoRleFromJson, type Bbox } from '../../../structures/coco-rle';
import { readJsonFile } from '../../io/json';
import { checkImageSize } from '../../io/limits';
import type { CocoAnnotation, CocoDataset, CocoImage, CocoResult } from './types';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isFiniteNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function checkBbox(file: string, where: string, v: unknown): Bbox {
  if (!Array.isArray(v) || v.length !== 4 || !v.every(isFiniteNum) || v[2] < 0 || v[3] < 0) {
    throw new InputError(file, where, `bbox is ${JSON.stringify(v)}, expected [x, y, width, height] with width, height >= 0`);
  }
  return v as Bbox;
}

function checkSegmentation(file: string, where: string, seg: unknown, h: number, w: number): void {
  if (Array.isArray(seg)) {
    seg.forEach((p, i) => {
      if (!Array.isArray(p) || p.length < 6 || p.length % 2 !== 0 || !p.every(isFiniteNum)) {
        throw new InputError(file, where, `segmentation polygon ${i} must be a flat list of at least 3 (x, y) pairs`);
      }
    });
    return;
  }
  if (!isObj(seg) || !Array.isArray(seg.size) || seg.size.length !== 2 || (typeof seg.counts !== 'string' && !Array.isArray(seg.counts))) {
    throw new InputError(file, where, 'segmentation must be a polygon list or an RLE {size: [h, w], counts}');
  }
  const [sh, sw] = seg.size as number[];
  if (sh !== h || sw !== w) {
    throw new InputError(file, where, `segmentation size [${sh}, ${sw}] differs from the image's [${h}, ${w}]`);
  }
  try {
    cocoRleFromJson(seg as never);
  } catch (e) {
    if (e instanceof CocoRleError) throw new InputError(file, where, `segmentation RLE: ${e.message}`);
    throw e;
  }
}

/** Reads a COCO (or LIVECell) ground-truth file; annotations given as an object become a list. */
export function readCocoDataset(file: string): CocoDataset {
  const raw = readJsonFile(file);
  if (!isObj(raw)) throw new InputError(file, undefined, 'top level must be an object with images, annotations, categories');
  for (const key of ['images', 'annotations', 'categories']) {
    if (!(key in raw)) throw new InputError(file, `key "${key}"`, 'is missing');
  }
  if (!Array.isArray(raw.images)) throw new InputError(file, 'key "images"', 'must be a list');
  if (!Array.isArray(raw.categories)) throw new InputError(file, 'key "categories"', 'must be a list');
  let anns: unknown[];
  if (Array.isArray(raw.annotations)) anns = raw.annotations;
  else if (isObj(raw.annotations)) anns = Object.values(raw.annotations); // LIVECell: keyed by id
  else throw new InputError(file, 'key "annotations"', 'must be a list or an object keyed by annotation id');

  const images = new Map<number, CocoImage>();
  raw.images.forEach((img: unknown, i: number) => {
    if (!isObj(img) || !isInt(img.id)) throw new InputError(file, `images[${i}]`, 'needs an integer "id"');
    if (!isPosInt(img.width) || !isPosInt(img.height)) {
      throw new InputError(file, `image id ${img.id}`, 'width and height must be positive integers');
    }
    checkImageSize(file, `image id ${img.id}`, img.width, img.height);
    if (images.has(img.id)) throw new InputError(file, `image id ${img.id}`, 'appears twice in "images"');
    images.set(img.id, img as CocoImage);
  });
  const catIds = new Set<number>();
  raw.categories.forEach((c: unknown, i: number) => {
    if (!isObj(c) || !isInt(c.id)) throw new InputError(file, `categories[${i}]`, 'needs an integer "id"');
    catIds.add(c.id);
  });
  const annIds = new Set<number>();
  anns.forEach((a, i) => {
    if (!isObj(a) || !isInt(a.id)) throw new InputError(file, `annotations[${i}]`, 'needs an integer "id"');
    const where = `annotation id ${a.id}`;
    if (annIds.has(a.id)) throw new InputError(file, where, 'id appears twice');
    annIds.add(a.id);
    const img = images.get(a.image_id as number);
    if (!img) throw new InputError(file, where, `unknown image_id ${JSON.stringify(a.image_id)}`);
    if (!catIds.has(a.category_id as number)) throw new InputError(file, where, `unknown category_id ${JSON.stringify(a.category_id)}`);
    checkBbox(file, where, a.bbox);
    if (!isFiniteNum(a.area)) throw new InputError(file, where, 'area must be a number');
    if (a.iscrowd !== undefined && a.iscrowd !== 0 && a.iscrowd !== 1 && a.iscrowd !== true && a.iscrowd !== false) {
      throw new InputError(file, where, `iscrowd is ${JSON.stringify(a.iscrowd)}, expected 0 or 1`);
    }
    if (a.segmentation !== undefined) checkSegmentation(file, where, a.segmentation, img.height, img.width);
  });
  return {
    info: raw.info as Record<string, unknown> | undefined,
    licenses: raw.licenses as unknown[] | undefined,
    images: [...images.values()],
    annotations: anns as CocoAnnotation[],
    categories: raw.categories as CocoDataset['categories'],
  };
}

/** Reads a COCO results list, checking ids against the ground truth. */
export function readCocoResults(file: string, gt: CocoDataset, iouType: 'segm' | 'bbox'): CocoResult[] {
  const raw = readJsonFile(file);
  if (!Array.isArray(raw)) throw new InputError(file, undefined, 'results must be a list of {image_id, category_id, score, bbox | segmentation}');
  const images = new Map(gt.images.map((im) => [im.id, im]));
  const cats = new Set(gt.categories.map((c) => c.id));
  raw.forEach((r: unknown, i: number) => {
    const where = `result [${i}]`;
    if (!isObj(r)) throw new InputError(file, where, 'must be an object');
    const img = images.get(r.image_id as number);
    if (!img) throw new InputError(file, where, `unknown image_id ${JSON.stringify(r.image_id)} (not in the ground truth)`);
    if (!cats.has(r.category_id as number)) throw new InputError(file, where, `unknown category_id ${JSON.stringify(r.category_id)}`);
    if (!isFiniteNum(r.score)) throw new InputError(file, where, 'score must be a finite number');
    if (r.bbox !== undefined) checkBbox(file, where, r.bbox);
    if (r.segmentation !== undefined) {
      if (Array.isArray(r.segmentation)) throw new InputError(file, where, 'segmentation results must be RLE, not polygons');
      checkSegmentation(file, where, r.segmentation, img.height, img.width);
    }
    if (r.segmentation === undefined && r.bbox === undefined) {
      throw new InputError(file, where, `${iouType} evaluation needs "bbox" or "segmentation"`);
    }
    // pycocotools' loadRes picks one branch from the first result: all must then carry that field.
    const first = raw[0] as Record<string, unknown>;
    const boxBranch = Array.isArray(first.bbox) && first.bbox.length > 0;
    if (boxBranch && r.bbox === undefined) {
      throw new InputError(file, where, 'has no "bbox" while the first result has one (pycocotools reads all results the same way)');
    }
    if (!boxBranch && r.segmentation === undefined) {
      throw new InputError(file, where, 'has no "segmentation" while the first result has no "bbox"');
    }
  });
  return raw as CocoResult[];
}

export { segmentationToCocoRle };
