// Training data as Detectron2's DatasetMapper + TrainingSampler + AspectRatioGroupedDataset make it:
// COCO json + image folder -> per-image records (XYXY boxes, contiguous 0-based classes, polygons;
// crowd and degenerate annotations dropped, images without annotations skipped when
// FILTER_EMPTY_ANNOTATIONS) -> an infinite seeded shuffle, grouped into batches by aspect ratio ->
// per sample: gray -> 3 channels, RandomCrop (INPUT.CROP, when enabled), ResizeShortestEdge (short
// side drawn from MIN_SIZE_TRAIN) and random flip, applied to image, masks (polygons or bitmasks,
// INPUT.MASK_FORMAT) and boxes together. With a crop, boxes are recomputed from the cut masks and
// instances the crop left empty are dropped, as Detectron2's DatasetMapper does.
//
// Every random choice is a function of (seed, position in the sample stream), so batch i is the
// same whether training ran from 0 or resumed at i — resume needs no sampler state.
import { Rng } from '../../runtime/rng';
import { InputError } from '../../runtime/errors';
import { cocoRleToCrop, segmentationToCocoRle } from '../../structures/coco-rle';
import { maskToPolygons } from '../../structures/mask-to-polygons';
import { readCocoDataset } from './coco/read';
import type { CocoDataset } from './coco/types';
import { resolveImage } from './image-list';
import { readImageGray } from '../io/image';
import type { GtInstances, ImageInput } from '../../models/centermask';
import {
  bitmaskBox,
  clipPolygonToWindow,
  cropImageU8,
  flipImageU8,
  grayToChw3,
  NO_FLIP,
  resizeBilinearU8,
  resizeShortestEdgeShape,
  transformBox,
  transformBitmask,
  transformPolygon,
  type CropWindow,
  type Flip,
  type Geometry,
} from './transforms';
import type { MaskCrop } from '../../structures/mask-crop';

export interface TrainAnnotation {
  /** XYXY in the original image. */
  box: [number, number, number, number];
  /** 0-based contiguous class. */
  category: number;
  /** Flat [x, y, ...] polygons (at least 3 points each) in the original image (MASK_FORMAT polygon). */
  polygons: number[][];
  /** The mask as a bitmask inside its box (MASK_FORMAT bitmask). */
  mask?: MaskCrop;
}

/** INPUT.MASK_FORMAT: how instance masks travel from the dataset to the mask targets. */
export type MaskFormat = 'polygon' | 'bitmask';

export interface TrainRecord {
  imageId: number;
  file: string;
  width: number;
  height: number;
  annotations: TrainAnnotation[];
}

export interface TrainingSet {
  records: TrainRecord[];
  /** COCO category ids in contiguous order: class k is categoryIds[k]. */
  categoryIds: number[];
  /** Images left out because they had no usable annotation. */
  skippedEmpty: number;
}

/** A COCO segmentation as polygons: polygon lists are kept (those with >= 3 points, as Detectron2
 *  keeps), RLE is turned into outer contours with the pipeline's maskToPolygons. */
export function segmentationToPolygons(seg: unknown, height: number, width: number): number[][] {
  if (Array.isArray(seg)) return (seg as number[][]).filter((p) => Array.isArray(p) && p.length % 2 === 0 && p.length >= 6);
  return maskToPolygons(cocoRleToCrop(segmentationToCocoRle(seg, height, width)));
}

export interface TrainingSetOptions {
  filterEmpty: boolean;
  /** Default 'polygon'. */
  maskFormat?: MaskFormat;
}

export function loadTrainingSet(cocoJson: string, imageRoot: string, opts: TrainingSetOptions): TrainingSet {
  return trainingSetFromCoco(readCocoDataset(cocoJson), imageRoot, opts);
}

/** A COCO segmentation (RLE or polygons) as a bitmask inside its bounding box. */
export function segmentationToBitmask(seg: unknown, height: number, width: number): MaskCrop {
  return cocoRleToCrop(segmentationToCocoRle(seg, height, width));
}

export function trainingSetFromCoco(ds: CocoDataset, imageRoot: string, opts: TrainingSetOptions): TrainingSet {
  const bitmask = (opts.maskFormat ?? 'polygon') === 'bitmask';
  const categoryIds = ds.categories.map((c) => c.id).sort((a, b) => a - b);
  const classOf = new Map(categoryIds.map((id, k) => [id, k]));
  const byImage = new Map<number, TrainAnnotation[]>();
  const imageById = new Map(ds.images.map((im) => [im.id, im]));
  for (const a of ds.annotations) {
    if (a.iscrowd) continue; // Detectron2 drops crowd regions from the training targets
    const k = classOf.get(a.category_id);
    if (k === undefined) throw new InputError('COCO annotations', `annotation id ${a.id}`, `category_id ${a.category_id} is not among the categories [${categoryIds}]`);
    const im = imageById.get(a.image_id);
    if (!im) throw new InputError('COCO annotations', `annotation id ${a.id}`, `image_id ${a.image_id} has no image entry`);
    const [x, y, w, h] = a.bbox;
    let ann: TrainAnnotation;
    if (bitmask) {
      if (a.segmentation === undefined || !(w > 0 && h > 0)) continue;
      const mask = segmentationToBitmask(a.segmentation, im.height, im.width);
      if (mask.width === 0) continue;
      ann = { box: [x, y, x + w, y + h], category: k, polygons: [], mask };
    } else {
      const polygons = a.segmentation === undefined ? [] : segmentationToPolygons(a.segmentation, im.height, im.width);
      if (polygons.length === 0 || !(w > 0 && h > 0)) continue;
      ann = { box: [x, y, x + w, y + h], category: k, polygons };
    }
    (byImage.get(a.image_id) ?? byImage.set(a.image_id, []).get(a.image_id)!).push(ann);
  }
  const records: TrainRecord[] = [];
  let skippedEmpty = 0;
  for (const im of ds.images) {
    const annotations = byImage.get(im.id) ?? [];
    if (opts.filterEmpty && annotations.length === 0) {
      skippedEmpty++;
      continue;
    }
    records.push({ imageId: im.id, file: resolveImage(imageRoot, im.file_name), width: im.width, height: im.height, annotations });
  }
  return { records, categoryIds, skippedEmpty };
}

/** INPUT.CROP (Detectron2's RandomCrop): SIZE is [height, width] (fractions for the relative types). */
export interface CropOptions {
  type: 'relative_range' | 'relative' | 'absolute' | 'absolute_range';
  size: readonly number[];
}

export const CROP_TYPES: readonly CropOptions['type'][] = ['relative_range', 'relative', 'absolute', 'absolute_range'];

/** RandomCrop.get_crop_size: [cropHeight, cropWidth] for an image, `rand` giving uniforms in [0, 1). */
export function cropSize(c: CropOptions, height: number, width: number, rand: () => number): [number, number] {
  const [a, b] = [c.size[0]!, c.size[1]!];
  const randint = (lo: number, hiExcl: number) => lo + Math.floor(rand() * (hiExcl - lo));
  switch (c.type) {
    case 'relative':
      return [Math.trunc(height * a + 0.5), Math.trunc(width * b + 0.5)];
    case 'relative_range': {
      const ch = a + rand() * (1 - a);
      const cw = b + rand() * (1 - b);
      return [Math.trunc(height * ch + 0.5), Math.trunc(width * cw + 0.5)];
    }
    case 'absolute':
      return [Math.min(a, height), Math.min(b, width)];
    case 'absolute_range':
      return [randint(Math.min(height, a), Math.min(height, b) + 1), randint(Math.min(width, a), Math.min(width, b) + 1)];
  }
}

/** Check INPUT.CROP values as Detectron2's RandomCrop asserts them. */
export function checkCropOptions(c: CropOptions): void {
  if (!CROP_TYPES.includes(c.type)) throw new InputError('config', 'INPUT.CROP.TYPE', `'${c.type}' is not one of ${CROP_TYPES.join(', ')}`);
  if (c.size.length !== 2) throw new InputError('config', 'INPUT.CROP.SIZE', `needs two numbers [height, width], got [${c.size}]`);
  const [a, b] = c.size as [number, number];
  if (c.type === 'relative' || c.type === 'relative_range') {
    if (!(a > 0 && a <= 1 && b > 0 && b <= 1)) throw new InputError('config', 'INPUT.CROP.SIZE', `a '${c.type}' crop needs fractions in (0, 1], got [${c.size}]`);
  } else {
    if (!(Number.isInteger(a) && Number.isInteger(b) && a > 0 && b > 0)) throw new InputError('config', 'INPUT.CROP.SIZE', `an '${c.type}' crop needs positive integer pixel sizes, got [${c.size}]`);
    if (c.type === 'absolute_range' && a > b) throw new InputError('config', 'INPUT.CROP.SIZE', `an 'absolute_range' crop needs min <= max, got [${c.size}]`);
  }
}

export interface AugmentOptions {
  /** INPUT.CROP when enabled, applied before the resize. */
  crop?: CropOptions;
  minSizes: readonly number[];
  /** 'choice' (one of minSizes) or 'range' (uniform integer in [minSizes[0], minSizes[1]]). */
  sampling: 'choice' | 'range';
  maxSize: number;
  /** INPUT.RANDOM_FLIP: 'horizontal', 'vertical' or 'none' (p = 0.5). */
  randomFlip: 'horizontal' | 'vertical' | 'none';
}

/** One image read, cropped (when a window is given), resized (short side `short`, long side
 *  capped at `maxSize`) and flipped. */
export function prepareImage(
  gray: Uint8Array,
  width: number,
  height: number,
  short: number,
  maxSize: number,
  flip: Flip = NO_FLIP,
  crop?: CropWindow,
): { input: ImageInput; geometry: Geometry } {
  const src = crop ? cropImageU8(gray, width, crop) : gray;
  const [w, h] = crop ? [crop.width, crop.height] : [width, height];
  const [outHeight, outWidth] = resizeShortestEdgeShape(h, w, short, maxSize);
  const resized = resizeBilinearU8(src, w, h, outWidth, outHeight);
  const flipped = flipImageU8(resized, outWidth, outHeight, flip);
  return {
    // A training crop is the model's whole input: its "original" size is the crop's.
    input: { image: grayToChw3(flipped, outWidth, outHeight), height: outHeight, width: outWidth, origHeight: h, origWidth: w },
    geometry: { inWidth: width, inHeight: height, ...(crop ? { crop } : {}), outWidth, outHeight, flip },
  };
}

/**
 * The annotations of a record through a geometry (Detectron2's transform_instance_annotations +
 * annotations_to_instances + filter_empty_instances): with a crop the boxes are recomputed from the
 * cut masks (DatasetMapper's recompute_boxes); instances whose box or mask becomes empty are dropped.
 * The GT carries polygons or bitmasks, as the annotations do.
 */
export function transformAnnotations(anns: readonly TrainAnnotation[], g: Geometry): GtInstances {
  const boxes: number[] = [];
  const classes: number[] = [];
  const polygons: number[][][] = [];
  const masks: MaskCrop[] = [];
  const bitmask = anns.length > 0 && anns[0]!.mask !== undefined;
  for (const a of anns) {
    let b = transformBox(a.box, g);
    if (bitmask) {
      if (!a.mask) throw new Error('transformAnnotations: an image mixes bitmask and polygon annotations');
      const m = transformBitmask(a.mask, g);
      if (m.width === 0) continue; // BitMasks.nonempty
      if (g.crop) b = bitmaskBox(m);
      if (!(b[2] - b[0] > 1e-5 && b[3] - b[1] > 1e-5)) continue;
      masks.push(m);
    } else {
      const polys = (g.crop ? a.polygons.map((p) => clipPolygonToWindow(p, g.crop!)).filter((p) => p.length >= 6) : a.polygons).map((p) => transformPolygon(p, g));
      if (polys.length === 0) continue;
      if (g.crop) b = polygonsBox(polys);
      if (!(b[2] - b[0] > 1e-5 && b[3] - b[1] > 1e-5)) continue;
      polygons.push(polys);
    }
    boxes.push(...b);
    classes.push(a.category);
  }
  return { boxes: Float32Array.from(boxes), classes: Int32Array.from(classes), ...(bitmask ? { masks } : { polygons }) };
}

/** PolygonMasks.get_bounding_boxes: min/max of every vertex. */
function polygonsBox(polys: readonly number[][]): [number, number, number, number] {
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const p of polys) {
    for (let i = 0; i < p.length; i += 2) {
      x0 = Math.min(x0, p[i]!);
      x1 = Math.max(x1, p[i]!);
      y0 = Math.min(y0, p[i + 1]!);
      y1 = Math.max(y1, p[i + 1]!);
    }
  }
  return [x0, y0, x1, y1];
}

/** A well-mixed 32-bit seed for stream position `pos` (splitmix-style). */
function mix(seed: number, salt: number, pos: number): number {
  let h = (seed ^ Math.imul(salt, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (pos >>> 0), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13) ^ Math.floor(pos / 4294967296), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export interface LoaderOptions extends AugmentOptions {
  batchSize: number;
  seed: number;
  /** DATALOADER.ASPECT_RATIO_GROUPING: batches hold only landscape (w > h) or only other images. */
  aspectRatioGrouping: boolean;
}

export interface TrainBatch {
  inputs: ImageInput[];
  gts: GtInstances[];
  imageIds: number[];
}

/** Seeded, resumable batches: `batch(i)` is a pure function of (records, options, i). */
export class TrainLoader {
  private readonly batches: number[][] = []; // stream positions of each batch
  private streamPos = 0;
  private readonly buckets: number[][] = [[], []];
  private perm: number[] = [];
  private permEpoch = -1;

  constructor(
    readonly records: readonly TrainRecord[],
    readonly opts: LoaderOptions,
    private readonly readGray: (file: string, width: number, height: number) => Uint8Array = (f, w, h) => readImageGray(f, { width: w, height: h }).data,
  ) {
    if (records.length === 0) throw new InputError('training set', undefined, 'has no image with annotations to train on');
    if (!(opts.batchSize >= 1)) throw new Error(`TrainLoader: batch size ${opts.batchSize} must be >= 1`);
    if (opts.minSizes.length === 0) throw new Error('TrainLoader: INPUT.MIN_SIZE_TRAIN is empty');
    if (opts.sampling === 'range' && opts.minSizes.length !== 2) throw new Error(`TrainLoader: 'range' sampling needs two sizes, got [${opts.minSizes}]`);
  }

  /** TrainingSampler: epoch e is a seeded permutation of all records; position p is epoch
   *  floor(p / n), index p mod n. */
  recordAt(pos: number): number {
    const n = this.records.length;
    const epoch = Math.floor(pos / n);
    if (epoch !== this.permEpoch) {
      const rng = new Rng(mix(this.opts.seed, 1, epoch));
      const perm = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(0, i + 1);
        [perm[i], perm[j]] = [perm[j]!, perm[i]!];
      }
      this.perm = perm;
      this.permEpoch = epoch;
    }
    return this.perm[pos % n]!;
  }

  /** Stream positions making up batch `iter` (grouped by aspect ratio when enabled). */
  batchPositions(iter: number): number[] {
    if (!Number.isInteger(iter) || iter < 0) throw new Error(`TrainLoader: batch index ${iter} must be a non-negative integer`);
    while (this.batches.length <= iter) {
      const pos = this.streamPos++;
      const r = this.records[this.recordAt(pos)]!;
      const bucket = this.opts.aspectRatioGrouping ? (r.width > r.height ? 0 : 1) : 0;
      const b = this.buckets[bucket]!;
      b.push(pos);
      if (b.length === this.opts.batchSize) {
        this.batches.push([...b]);
        b.length = 0;
      }
    }
    return this.batches[iter]!;
  }

  /** The augmentation drawn for stream position `pos`: short side and flip. */
  augmentationAt(pos: number): { short: number; flip: Flip } {
    const rng = new Rng(mix(this.opts.seed, 2, pos));
    const m = this.opts.minSizes;
    const short = this.opts.sampling === 'choice' ? m[rng.int(0, m.length)]! : rng.int(m[0]!, m[1]! + 1);
    const flipped = this.opts.randomFlip !== 'none' && rng.next() < 0.5;
    return { short, flip: { horizontal: flipped && this.opts.randomFlip === 'horizontal', vertical: flipped && this.opts.randomFlip === 'vertical' } };
  }

  /** The crop window drawn for stream position `pos` in an image of the given size (its own
   *  random stream, so enabling the crop leaves the resize and flip draws unchanged). */
  cropAt(pos: number, height: number, width: number): CropWindow | undefined {
    const c = this.opts.crop;
    if (!c) return undefined;
    const rng = new Rng(mix(this.opts.seed, 3, pos));
    const [ch, cw] = cropSize(c, height, width, () => rng.next());
    if (!(ch >= 1 && cw >= 1 && ch <= height && cw <= width)) throw new Error(`RandomCrop: crop ${cw}x${ch} does not fit the ${width}x${height} image`);
    return { y0: rng.int(0, height - ch + 1), x0: rng.int(0, width - cw + 1), height: ch, width: cw };
  }

  sample(pos: number): { input: ImageInput; gt: GtInstances; imageId: number } {
    const r = this.records[this.recordAt(pos)]!;
    const { short, flip } = this.augmentationAt(pos);
    const crop = this.cropAt(pos, r.height, r.width);
    const gray = this.readGray(r.file, r.width, r.height);
    const { input, geometry } = prepareImage(gray, r.width, r.height, short, this.opts.maxSize, flip, crop);
    return { input, gt: transformAnnotations(r.annotations, geometry), imageId: r.imageId };
  }

  batch(iter: number): TrainBatch {
    const out: TrainBatch = { inputs: [], gts: [], imageIds: [] };
    for (const pos of this.batchPositions(iter)) {
      const s = this.sample(pos);
      out.inputs.push(s.input);
      out.gts.push(s.gt);
      out.imageIds.push(s.imageId);
    }
    return out;
  }
}
