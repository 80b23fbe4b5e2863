import type { Command } from 'commander';
import { UserError } from '../../../runtime/errors';
import { readSubmission } from '../../post/submission';
import { listImageFiles } from '../../data/image-list';
import { readImageGray } from '../../io/image';
import { validateSubmission } from '../../post/validate-submission';
import { parseIntOption } from '../args';

export function register(program: Command): void {
  program
    .command('validate-submission')
    .description('check a submission: header, image ids, RLE validity and that no two masks of an image overlap')
    .argument('<submission>', 'submission.csv')
    .option('--sample <file>', 'sample_submission.csv giving the expected ids')
    .option('--test-dir <dir>', 'folder of test images (PNG, TIFF) giving the expected ids and image sizes')
    .option('--width <px>', 'image width when sizes are not read from images', parseIntOption('--width', 1), 704)
    .option('--height <px>', 'image height when sizes are not read from images', parseIntOption('--height', 1), 520)
    .action(async (file: string, o: { sample?: string; testDir?: string; width: number; height: number }) => {
      if (!o.sample === !o.testDir) throw new UserError('give exactly one of --sample or --test-dir');
      const expected = new Map<string, { width: number; height: number }>();
      if (o.testDir) {
        for (const { id, file } of listImageFiles(o.testDir)) {
          const img = readImageGray(file);
          expected.set(id, { width: img.width, height: img.height });
        }
      } else {
        const sample = await readSubmission(o.sample!, () => ({ width: o.width, height: o.height }));
        for (const id of sample.keys()) expected.set(id, { width: o.width, height: o.height });
      }
      const r = await validateSubmission(file, expected);
      console.log(`${file} is valid: ${r.images} images, ${r.instances} instances, ${r.emptyImages} images without instances`);
    });
}
