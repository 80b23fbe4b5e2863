// COCO instance-annotation JSON as pycocotools reads it (and as `cellseg coco` writes it).
import type { Bbox, CocoRleJson } from '../../../structures/coco-rle';

export type Polygon = number[];
export type Segmentation = Polygon[] | CocoRleJson;

export interface CocoImage {
  id: number;
  width: number;
  height: number;
  file_name: string;
  [extra: string]: unknown;
}

export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  segmentation?: Segmentation;
  area: number;
  bbox: Bbox;
  iscrowd: number;
  [extra: string]: unknown;
}

export interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
}

export interface CocoDataset {
  info?: Record<string, unknown>;
  licenses?: unknown[];
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
}

/** One detection in the COCO results format. */
export interface CocoResult {
  image_id: number;
  category_id: number;
  score: number;
  bbox?: Bbox;
  segmentation?: CocoRleJson;
}
