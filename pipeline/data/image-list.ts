// Which images a command works on and where their files are: the images (PNG or TIFF) of a folder
// (ids in sorted file order, 1-based), the images of a COCO json, the train.csv images of a dataset folder, and
// the Sartorius id of a COCO image entry.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { InputError, UserError } from '../../runtime/errors';
import { readJsonFile } from '../io/json';
import { imageStem, isImageFileName, readImageGray } from '../io/image';
import { COCO_CATEGORIES } from './cell-types';
import { readCocoDataset } from './coco/read';
import type { CocoDataset, CocoImage } from './coco/types';
import { readTrainCsv, type TrainImage } from './train-csv';

/** The images (PNG, TIFF) of a folder, sorted by id (the file name without its extension). */
export function listImageFiles(dir: string): { id: string; file: string }[] {
  if (!existsSync(dir)) throw new InputError(dir, undefined, 'folder is missing');
  const byId = new Map<string, string>();
  for (const f of readdirSync(dir).filter(isImageFileName)) {
    const id = imageStem(f);
    const other = byId.get(id);
    if (other) throw new InputError(join(dir, f), undefined, `has the same image id "${id}" as ${other}; keep one of them`);
    byId.set(id, f);
  }
  return [...byId.keys()].sort().map((id) => ({ id, file: join(dir, byId.get(id)!) }));
}

/** Sorted ids (file names without extension) of a folder of images. */
export function listPngIds(dir: string): string[] {
  return listImageFiles(dir).map((f) => f.id);
}

/** The image file of `id` in `dir`: id.png, id.tif or id.tiff (the first that exists; else id.png). */
export function imageFileOf(dir: string, id: string): string {
  for (const ext of ['.png', '.tif', '.tiff', '.PNG', '.TIF', '.TIFF']) {
    const f = join(dir, `${id}${ext}`);
    if (existsSync(f)) return f;
  }
  return join(dir, `${id}.png`);
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

/** A folder of images (PNG, TIFF; ids 1.. in sorted order) or the images of a COCO json. */
export function listImages(images: string, imageRoot?: string): { entries: ImageEntry[]; categoryIds?: number[] } {
  if (!existsSync(images)) throw new UserError(`--images ${images} does not exist`);
  if (statSync(images).isDirectory()) {
    return { entries: listImageFiles(images).map((f, i) => ({ id: i + 1, file: f.file, name: f.id })) };
  }
  const ds = readCocoDataset(images);
  const root = imageRoot ?? '.';
  return {
    entries: ds.images.map((im) => ({ id: im.id, file: resolveImage(root, im.file_name), name: imageStem(basename(im.file_name)) })),
    categoryIds: ds.categories.length ? ds.categories.map((c) => c.id).sort((a, b) => a - b) : undefined,
  };
}

/** The images of `train.csv` in a dataset folder; each must have its image (PNG or TIFF) in train/ (opened and
 *  checked against the csv's size when `checkImages`). */
export async function readTrainImages(dataDir: string, checkImages = false): Promise<TrainImage[]> {
  const images: TrainImage[] = [];
  for await (const img of readTrainCsv(join(dataDir, 'train.csv'))) {
    const png = imageFileOf(join(dataDir, 'train'), img.id);
    if (!existsSync(png)) throw new InputError(png, undefined, `image of ${img.id} (train.csv line ${img.instances[0]?.line ?? '?'}) is missing`);
    if (checkImages) readImageGray(png, { width: img.width, height: img.height });
    images.push(img);
  }
  return images;
}

/** The images (PNG, TIFF) of `dataDir/folder` as COCO image entries (ids 1.. in sorted order, sizes read from the
 *  files, file names relative to dataDir); none when the folder does not exist. */
export function cocoImagesOfFolder(dataDir: string, folder: string): CocoImage[] {
  const dir = join(dataDir, folder);
  const files = existsSync(dir) ? listImageFiles(dir) : [];
  return files.map(({ id, file }, i) => {
    const img = readImageGray(file);
    return { id: i + 1, width: img.width, height: img.height, file_name: `${folder}/${basename(file)}`, sartorius_id: id };
  });
}

/** The Sartorius id of a COCO image entry: `sartorius_id`, else the file name's stem. */
export function sartoriusId(im: CocoImage): string {
  return typeof im.sartorius_id === 'string' ? im.sartorius_id : imageStem(basename(im.file_name));
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
