// `cellseg train --strict`: a MODEL.WEIGHTS checkpoint that does not fit the model (a one-class
// cls_logits, a tensor the model lacks, everything else missing) ends the command with exit 1 and
// one line naming the first problems, after OUTPUT_DIR/weights_report.json is written.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostTensor, type HostTensor } from '../../../engine/checkpoint/host-tensor';
import { writeSafetensors } from '../../../engine/checkpoint/safetensors';
import { writeSynthDataset } from '../../../pipeline/data/synth/dataset';
import { readTrainCsvAll } from '../../../pipeline/data/train-csv';
import { buildCocoDataset } from '../../../pipeline/data/coco/build';
import { writeJsonAtomic } from '../../../pipeline/io/atomic';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('cli-strict');
afterAll(tmp.cleanup);
const ROOT = new URL('../../../', import.meta.url).pathname;

describe('cellseg train --strict', () => {
  it('refuses a checkpoint that does not fit, with one line, after writing weights_report.json', async () => {
    const data = join(tmp.dir, 'data');
    writeSynthDataset(data, { seed: 1, trainImages: 3, testImages: 0, width: 96, height: 96 }, true);
    const { dataset } = buildCocoDataset(await readTrainCsvAll(join(data, 'train.csv')), { segmentation: 'rle', imageDir: 'train' });
    writeJsonAtomic(join(tmp.dir, 'coco.json'), dataset, 0);
    const ckpt = join(tmp.dir, 'livecell.safetensors');
    const tensors = new Map<string, HostTensor>([
      ['proposal_generator.fcos_head.cls_logits.weight', hostTensor('F32', [1, 128, 3, 3], new Float32Array(128 * 9))],
      ['backbone.bottom_up.stage5.OSA5_2.layers.0.conv.weight', hostTensor('F32', [1], new Float32Array(1))],
    ]);
    await writeSafetensors(ckpt, tensors);
    const out = join(tmp.dir, 'out');
    const r = spawnSync(
      join(ROOT, 'node_modules/.bin/tsx'),
      [join(ROOT, 'pipeline/cli/main.ts'), 'train', '--strict', '--no-eval', '--config-file', join(ROOT, 'configs/synth_centermask_lite_V_19_slim_scratch.yaml'), '--train-json', join(tmp.dir, 'coco.json'), '--image-root', data, 'MODEL.WEIGHTS', ckpt, 'OUTPUT_DIR', out],
      { encoding: 'utf8', cwd: tmp.dir },
    );
    expect(r.status).toBe(1);
    const line = r.stderr.split('\n').find((l) => l.startsWith('cellseg: '))!;
    expect(line).toMatch(/^cellseg: --strict: MODEL\.WEIGHTS .*livecell\.safetensors does not fit the model \(\d+ problems; see .*weights_report\.json\): proposal_generator\.fcos_head\.cls_logits\.weight: shape \[1,128,3,3\] in the checkpoint, \[3,128,3,3\] in the model; backbone\.bottom_up\.stage5\.OSA5_2\.layers\.0\.conv\.weight: not in the model; /);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
    expect(existsSync(join(out, 'weights_report.json'))).toBe(true);
    const report = JSON.parse(readFileSync(join(out, 'weights_report.json'), 'utf8'));
    expect(report.loaded).toEqual([]);
    expect(report.not_in_model).toEqual(['backbone.bottom_up.stage5.OSA5_2.layers.0.conv.weight']);
    expect(existsSync(join(out, 'model_final.safetensors'))).toBe(false);
  }, 300_000);
});
