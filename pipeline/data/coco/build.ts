// train.csv -> COCO ground truth (categories shsy5y=1, astro=2, cort=3). Per instance: bbox and area
// from the pycocotools RLE of the mask (bbox via rleToBbox, area = pixel count), iscrowd 0, and the
// segmentation as compressed RLE (default, exact) or as polygons. Images carry cell_type and
// sample_id as extra keys so `cellseg split` can stratify and group.
import { COCO_CATEGORIES, categoryIdOf } from '../cell-types';
import { cocoRleArea, cocoRleToBbox, cocoRleToJson, cropToCocoRle } from '../../../structures/coco-rle';
import { runsToCrop } from '../../../structures/mask-crop';
import type { TrainImage } from '../train-csv';
import { maskToPolygons } from '../../../structures/mask-to-polygons';
import type { CocoAnnotation, CocoDataset, CocoImage } from './types';

export type SegmentationFormat = 'rle' | 'polygon';

export interface BuildCocoOptions {
  segmentation: SegmentationFormat;
  /** Prefix of file_name (the image folder relative to where training reads it). */
  imageDir: string;
  /** The image file's extension of an image id (default '.png'; TIFF training images: '.tif'). */
  imageExtension?: (id: string) => string;
}

export function buildCocoDataset(images: readonly TrainImage[], opts: BuildCocoOptions): { dataset: CocoDataset; dropped: number } {
  const cocoImages: CocoImage[] = [];
  const annotations: CocoAnnotation[] = [];
  let dropped = 0;
  images.forEach((img, i) => {
    const imageId = i + 1;
    cocoImages.push({
      id: imageId,
      width: img.width,
      height: img.height,
      file_name: `${opts.imageDir.replace(/\/$/, '')}/${img.id}${opts.imageExtension?.(img.id) ?? '.png'}`,
      sartorius_id: img.id,
      cell_type: img.cellType,
      sample_id: img.sampleId,
    });
    for (const inst of img.instances) {
      const crop = runsToCrop(inst.runs, img.width, img.height);
      const rle = cropToCocoRle(crop);
      let segmentation: CocoAnnotation['segmentation'];
      if (opts.segmentation === 'rle') segmentation = cocoRleToJson(rle);
      else {
        const polys = maskToPolygons(crop);
        if (polys.length === 0) {
          dropped++; // as the notebook: an instance without a polygon is left out
          continue;
        }
        segmentation = polys;
      }
      annotations.push({
        id: annotations.length + 1,
        image_id: imageId,
        category_id: categoryIdOf(img.cellType),
        segmentation,
        area: cocoRleArea(rle),
        bbox: cocoRleToBbox(rle),
        iscrowd: 0,
      });
    }
  });
  return { dataset: { images: cocoImages, annotations, categories: COCO_CATEGORIES.map((c) => ({ ...c })) }, dropped };
}

/** A COCO subset with images and annotations renumbered from 1 (as the notebook's fold files). */
export function subsetCoco(ds: CocoDataset, imageIds: readonly number[]): CocoDataset {
  const keep = new Map<number, number>();
  const images = imageIds.map((id, i) => {
    keep.set(id, i + 1);
    return { ...ds.images.find((im) => im.id === id)!, id: i + 1 };
  });
  const annotations: CocoAnnotation[] = [];
  for (const a of ds.annotations) {
    const nid = keep.get(a.image_id);
    if (nid !== undefined) annotations.push({ ...a, id: annotations.length + 1, image_id: nid });
  }
  return { info: ds.info, licenses: ds.licenses, images, annotations, categories: ds.categories };
}
