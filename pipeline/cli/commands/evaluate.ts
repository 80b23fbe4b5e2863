import type { Command } from 'commander';
import { UserError } from '../../../runtime/errors';
import { readCocoDataset, readCocoResults } from '../../data/coco/read';
import { cocoEvaluate, formatCocoSummary } from '../../evaluation/coco-eval';
import { writeJsonAtomic } from '../../io/atomic';
import { parseMaxDets } from '../args';
import { checkOutputs } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('COCO AP/AR of detections against ground truth, with pycocotools semantics')
    .requiredOption('--gt <file>', 'COCO ground-truth JSON')
    .requiredOption('--pred <file>', 'COCO results JSON: [{image_id, category_id, score, bbox | segmentation}]')
    .option('--iou-type <type>', 'segm or bbox', 'segm')
    .option('--max-dets <list>', 'three maxDets values (pycocotools reports AP at maxDets 100 whatever this is)', '1,10,100')
    .option('--json <file>', 'write {"segm"|"bbox": {AP, AP50, ...}} on the 0-1 scale')
    .action((o: { gt: string; pred: string; iouType: string; maxDets: string; json?: string }) => {
      checkOutputs({ '--json': o.json });
      if (o.iouType !== 'segm' && o.iouType !== 'bbox') throw new UserError(`--iou-type must be segm or bbox, got "${o.iouType}"`);
      const maxDets = parseMaxDets(o.maxDets);
      if (!maxDets.includes(100)) console.warn('note: AP is reported at maxDets=100 as in pycocotools; without 100 in --max-dets it is -1');
      const gt = readCocoDataset(o.gt);
      const res = readCocoResults(o.pred, gt, o.iouType);
      const out = cocoEvaluate(gt, res, { iouType: o.iouType, maxDets });
      for (const l of formatCocoSummary(out.summary, o.iouType, maxDets)) console.log(l);
      if (o.json) writeJsonAtomic(o.json, { [o.iouType]: out.summary });
    });
}
