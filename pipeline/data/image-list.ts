// Which images a command works on and where their files are: the PNGs of a folder (ids in sorted
// file order, 1-based), the images of a COCO json, the train.csv images of a dataset folder, and
// the Sartorius id of a COCO image entry.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { InputError, UserError } from '../../runtime/errors';
import { readJsonFile } from '../io/json';
import { readPngGray } from '../io/png';
import { COCO_CATEGORIES } from './cell-types';
import { readCocoDataset } from './coco/read';
import type { CocoDataset, CocoImage } from './coco/types';
import { readTrainCsv, type TrainImage } from './train-csv';

/** Sorted ids (file names without .png) of a folder of PNGs. */
export function listPngIds(dir: string): string[] {
  if (!existsSync(dir)) throw new InputError(dir, undefined, 'folder is missing');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.png'))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** The image folder a COCO file_name is relative to. */
export function resolveImage(root: string, fileName: string): string {
  return isAbsolute(fileName) ? fileName : join(root, fileName);
}

export interface ImageEntry {
  id: number;
  file: string;
  name: string;
}

/** A folder of PNGs (ids 1.. in sorted order) or the images of a COCO json. */
export function listImages(images: string, imageRoot?: string): { entries: ImageEntry[]; categoryIds?: number[] } {
  if (!existsSync(images)) throw new UserError(`--images ${images} does not exist`);
  if (statSync(images).isDirectory()) {
    return { entries: listPngIds(images).map((id, i) => ({ id: i + 1, file: join(images, `${id}.png`), name: id })) };
  }
  const ds = readCocoDataset(images);
  const root = imageRoot ?? '.';
  return {
    entries: ds.images.map((im) => ({ id: im.id, file: resolveImage(root, im.file_name), name: basename(im.file_name).replace(/\.png$/i, '') })),
    categoryIds: ds.categories.length ? ds.categories.map((c) => c.id).sort((a, b) => a - b) : undefined,
  };
}

/** The images of `train.csv` in a dataset folder; each must have its PNG in train/ (opened and
 *  checked against the csv's size when `checkImages`). */
export async function readTrainImages(dataDir: string, checkImages = false): Promise<TrainImage[]> {
  const images: TrainImage[] = [];
  for await (const img of readTrainCsv(join(dataDir, 'train.csv'))) {
    const png = join(dataDir, 'train', `${img.id}.png`);
    if (!existsSync(png)) throw new InputError(png, undefined, `PNG of image ${img.id} (train.csv line ${img.instances[0]?.line ?? '?'}) is missing`);
    if (checkImages) readPngGray(png, { width: img.width, height: img.height });
    images.push(img);
  }
  return images;
}

/** The PNGs of `dataDir/folder` as COCO image entries (ids 1.. in sorted order, sizes read from the
 *  files, file names relative to dataDir); none when the folder does not exist. */
export function cocoImagesOfFolder(dataDir: string, folder: string): CocoImage[] {
  const dir = join(dataDir, folder);
  const ids = existsSync(dir) ? listPngIds(dir) : [];
  return ids.map((id, i) => {
    const img = readPngGray(join(dir, `${id}.png`));
    return { id: i + 1, width: img.width, height: img.height, file_name: `${folder}/${id}.png`, sartorius_id: id };
  });
}

/** The Sartorius id of a COCO image entry: `sartorius_id`, else the file name's stem. */
export function sartoriusId(im: CocoImage): string {
  return typeof im.sartorius_id === 'string' ? im.sartorius_id : basename(im.file_name).replace(/\.png$/i, '');
}

/** A COCO images list (the test_images.json that `cellseg coco` writes) as a dataset without annotations. */
export function readImagesList(file: string): CocoDataset {
  const raw = readJsonFile(file) as { images?: unknown };
  if (typeof raw !== 'object' || raw === null || !Array.isArray(raw.images)) {
    throw new InputError(file, 'key "images"', 'is missing; expected the test_images.json that `cellseg coco` writes');
  }
  const images = raw.images as CocoImage[];
  images.forEach((im, i) => {
    if (typeof im?.id !== 'number' || typeof im.width !== 'number' || typeof im.height !== 'number' || typeof im.file_name !== 'string') {
      throw new InputError(file, `images[${i}]`, 'needs id, width, height and file_name');
    }
  });
  return { images, annotations: [], categories: COCO_CATEGORIES };
}
