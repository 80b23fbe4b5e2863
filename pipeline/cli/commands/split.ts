import { join } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../../../runtime/errors';
import { subsetCoco } from '../../data/coco/build';
import { readCocoDataset } from '../../data/coco/read';
import { stratifiedKFold } from '../../data/coco/split';
import { jsonFile, writeFilesAtomic } from '../../io/atomic';
import { parseIntOption } from '../args';
import { checkOutputDir } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('split')
    .description('stratified K-fold split (by cell type, seeded, optionally grouped by sample) into train_fold_k.json / val_fold_k.json')
    .requiredOption('--coco <file>', 'COCO JSON written by `cellseg coco`')
    .option('--out-dir <dir>', 'output folder', 'output/folds')
    .option('--folds <k>', 'number of folds', parseIntOption('--folds', 2), 5)
    .option('--seed <n>', 'shuffle seed', parseIntOption('--seed', 0), 777)
    .option('--group-by-sample', 'keep all images of a sample_id in the same fold')
    .action((o: { coco: string; outDir: string; folds: number; seed: number; groupBySample?: boolean }) => {
      checkOutputDir(o.outDir, '--out-dir');
      const ds = readCocoDataset(o.coco);
      const items = ds.images.map((im) => {
        if (typeof im.cell_type !== 'string') throw new InputError(o.coco, `image id ${im.id}`, 'has no "cell_type" (write the file with `cellseg coco`)');
        if (o.groupBySample && typeof im.sample_id !== 'string') throw new InputError(o.coco, `image id ${im.id}`, 'has no "sample_id" to group by');
        return { id: im.id, stratum: im.cell_type, group: im.sample_id as string | undefined };
      });
      if (items.length < o.folds) throw new InputError(o.coco, undefined, `${items.length} images cannot fill ${o.folds} folds`);
      const fold = stratifiedKFold(items, o.folds, o.seed, !!o.groupBySample);
      let csv = 'image_id,sartorius_id,cell_type,fold\n';
      for (const im of ds.images) csv += `${im.id},${im.sartorius_id ?? ''},${im.cell_type},${fold.get(im.id)}\n`;
      // All 2K + 1 files appear together or not at all (a full disk leaves the previous split).
      const files = [];
      const lines = [];
      for (let k = 0; k < o.folds; k++) {
        const val = ds.images.filter((im) => fold.get(im.id) === k).map((im) => im.id);
        const train = ds.images.filter((im) => fold.get(im.id) !== k).map((im) => im.id);
        files.push(jsonFile(join(o.outDir, `train_fold_${k}.json`), subsetCoco(ds, train), 0), jsonFile(join(o.outDir, `val_fold_${k}.json`), subsetCoco(ds, val), 0));
        lines.push(`fold ${k}: ${train.length} train / ${val.length} val images`);
      }
      files.push({ path: join(o.outDir, 'folds.csv'), data: csv });
      writeFilesAtomic(files);
      for (const l of lines) console.log(l);
    });
}
