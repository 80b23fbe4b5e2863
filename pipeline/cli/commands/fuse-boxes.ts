import type { Command } from 'commander';
import { fuseBoxesFile } from '../../fusion/fuse-boxes';
import { checkOutputs } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('fuse-boxes')
    .description('Weighted Boxes Fusion (ensemble_boxes.weighted_boxes_fusion semantics) of several models\' boxes')
    .argument('<in>', 'JSON {boxes, scores, labels, weights?, iou_thr, skip_box_thr, conf_type, allows_overflow?}')
    .argument('<out>', 'JSON {boxes, scores, labels}')
    .action((inFile: string, outFile: string) => {
      checkOutputs({ OUT: outFile });
      const r = fuseBoxesFile(inFile, outFile, (m) => console.warn(`warning: ${m}`));
      console.log(`fused ${r.input} boxes into ${r.fused}`);
    });
}
