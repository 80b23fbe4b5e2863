import { extname, join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../../runtime/errors';
import { COCO_CATEGORIES } from '../../data/cell-types';
import { buildCocoDataset, type SegmentationFormat } from '../../data/coco/build';
import { cocoImagesOfFolder, imageFileOf, readTrainImages } from '../../data/image-list';
import { jsonFile, writeFilesAtomic } from '../../io/atomic';
import { progress } from '../../io/progress';
import { checkOutputs } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('coco')
    .description('convert train.csv to COCO ground truth (categories shsy5y=1, astro=2, cort=3) and list the test images')
    .requiredOption('--data <dir>', 'dataset folder with train.csv, train/ and test/')
    .option('--out <file>', 'COCO JSON of all training images', 'output/annotations_all.json')
    .option('--test-out <file>', 'COCO images list of test/ (what `cellseg submit --images` reads)', 'output/test_images.json')
    .option('--segmentation <kind>', 'rle (compressed, exact) or polygon', 'rle')
    .option('--check-images', 'open every train image (PNG or TIFF) and check its size against train.csv')
    .action(async (o: { data: string; out: string; testOut: string; segmentation: string; checkImages?: boolean }) => {
      if (o.segmentation !== 'rle' && o.segmentation !== 'polygon') {
        throw new UserError(`--segmentation must be rle or polygon, got "${o.segmentation}"`);
      }
      checkOutputs({ '--out': o.out, '--test-out': o.testOut });
      const images = await readTrainImages(o.data, !!o.checkImages);
      const bar = progress('coco', images.length);
      const { dataset, dropped } = buildCocoDataset(images, { segmentation: o.segmentation as SegmentationFormat, imageDir: 'train', imageExtension: (id) => extname(imageFileOf(join(o.data, 'train'), id)) });
      bar.stop();
      // Both outputs appear together or not at all: everything is read and checked first.
      const testImages = cocoImagesOfFolder(o.data, 'test');
      writeFilesAtomic([jsonFile(o.out, dataset, 0), jsonFile(o.testOut, { images: testImages, annotations: [], categories: COCO_CATEGORIES })]);
      console.log(
        `wrote ${o.out}: ${dataset.images.length} images, ${dataset.annotations.length} annotations` +
          (dropped ? ` (${dropped} without a polygon left out)` : '') +
          `; ${o.testOut}: ${testImages.length} test images`,
      );
    });
}
