// MODEL.WEIGHTS for training (loadWeightsForTraining): a LIVECell-style checkpoint (Detectron2's key
// names, one class instead of three, pixel_mean/std, a tensor the model lacks, one the checkpoint
// lacks) loads what fits, skips the class-count-dependent layers with both shapes, leaves them at
// initialisation, and writes OUTPUT_DIR/weights_report.json; strict fails with one line instead.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../runtime/runtime';
import { UserError } from '../../../runtime/errors';
import { loadConfig } from '../../../models/config/config';
import { hostTensor, type HostTensor } from '../../../engine/checkpoint/host-tensor';
import { writeSafetensors } from '../../../engine/checkpoint/safetensors';
import { buildTrainableModel } from '../../../pipeline/engine/model';
import { loadWeightsForTraining, modelStateToHost, WEIGHTS_REPORT } from '../../../pipeline/engine/checkpoint';

const CONFIG = 'configs/sartorius_centermask_lite_V_19_slim.yaml';
const EXTRA = 'backbone.bottom_up.stage5.OSA5_2.layers.0.conv.weight';
let ckpt: string;
let ckptTensors: Map<string, HostTensor>;
let dropped: string;

beforeAll(async () => {
  await init();
  // "LIVECell": the same architecture trained on one class
  const livecell = buildTrainableModel(loadConfig(CONFIG, ['MODEL.FCOS.NUM_CLASSES', '1', 'MODEL.ROI_HEADS.NUM_CLASSES', '1']));
  ckptTensors = await modelStateToHost(livecell);
  livecell.dispose();
  dropped = [...ckptTensors.keys()].find((k) => k.endsWith('running_var') || k.includes('fcos_head.bbox_pred.bias'))!;
  ckptTensors.delete(dropped);
  ckptTensors.set('pixel_mean', hostTensor('F32', [3, 1, 1], Float32Array.from([128, 128, 128])));
  ckptTensors.set('pixel_std', hostTensor('F32', [3, 1, 1], Float32Array.from([11.578, 11.578, 11.578])));
  ckptTensors.set(EXTRA, hostTensor('F32', [2, 2, 1, 1], Float32Array.from([1, 2, 3, 4])));
  ckpt = join(mkdtempSync(join(tmpdir(), 'wr-')), 'livecell_model_final.safetensors');
  await writeSafetensors(ckpt, ckptTensors);
}, 120_000);

describe('MODEL.WEIGHTS report', () => {
  it('loads what fits, skips the class layers with both shapes, reports what is left at init', async () => {
    const model = buildTrainableModel(loadConfig(CONFIG));
    const before = await modelStateToHost(model);
    const out = mkdtempSync(join(tmpdir(), 'wr-out-'));
    const lines: string[] = [];
    const r = await loadWeightsForTraining(ckpt, model, out, { log: (l) => lines.push(l) });
    const after = await modelStateToHost(model);

    const skipped = r.shapeMismatches.map((m) => m.key);
    expect(skipped).toContain('proposal_generator.fcos_head.cls_logits.weight');
    expect(skipped).toContain('proposal_generator.fcos_head.cls_logits.bias');
    expect(skipped.some((k) => k.startsWith('roi_heads.mask_head.predictor'))).toBe(true);
    const cls = r.shapeMismatches.find((m) => m.key === 'proposal_generator.fcos_head.cls_logits.weight')!;
    expect(cls.checkpoint[0]).toBe(1);
    expect(cls.model[0]).toBe(3);
    expect(cls.checkpoint.slice(1)).toEqual(cls.model.slice(1));
    // every skipped tensor really differs in shape, and every other shared one was loaded
    for (const m of r.shapeMismatches) expect(ckptTensors.get(m.key)!.shape).toEqual(m.checkpoint);
    expect(r.unexpected).toEqual([EXTRA]);
    expect(r.missing).toEqual([dropped]);
    expect(r.leftAtInit.sort()).toEqual([...skipped, dropped].sort());
    expect(r.loaded).toBe(before.size - r.leftAtInit.length);
    expect(r.loadedKeys.length).toBe(r.loaded);

    // values: loaded = the checkpoint's, left at init = unchanged
    const k = r.loadedKeys.find((x) => x.includes('backbone.bottom_up.stem'))!;
    expect(Array.from(after.get(k)!.data as Float32Array)).toEqual(Array.from(ckptTensors.get(k)!.data as Float32Array));
    for (const key of r.leftAtInit) expect(Array.from(after.get(key)!.data as ArrayLike<number>)).toEqual(Array.from(before.get(key)!.data as ArrayLike<number>));

    const report = JSON.parse(readFileSync(join(out, WEIGHTS_REPORT), 'utf8'));
    expect(report.loaded.length).toBe(r.loaded);
    expect(report.skipped_shape).toEqual(r.shapeMismatches);
    expect(report.not_in_model).toEqual([EXTRA]);
    expect(report.left_at_init.sort()).toEqual(r.leftAtInit.sort());
    const summary = lines.find((l) => l.startsWith('MODEL.WEIGHTS'))!;
    expect(summary).toContain(`loaded ${r.loaded} tensors; skipped ${skipped.length} for shape and 1 not in the model; ${r.leftAtInit.length} model tensors left at initialisation`);
    expect(lines.some((l) => l.includes("Skip loading parameter 'proposal_generator.fcos_head.cls_logits.weight'"))).toBe(true);
    model.dispose();
  }, 120_000);

  it('strict: one-line UserError naming the first problems, after writing the report', async () => {
    const model = buildTrainableModel(loadConfig(CONFIG));
    const out = mkdtempSync(join(tmpdir(), 'wr-strict-'));
    const err = await loadWeightsForTraining(ckpt, model, out, { strict: true, log: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg.split('\n').length).toBe(1);
    expect(msg).toMatch(/^--strict: MODEL\.WEIGHTS .*livecell_model_final\.safetensors does not fit the model \(\d+ problems; see .*weights_report\.json\): /);
    expect(msg).toMatch(/cls_logits\.weight: shape \[1,\d+,3,3\] in the checkpoint, \[3,\d+,3,3\] in the model/);
    expect(existsSync(join(out, WEIGHTS_REPORT))).toBe(true);
    model.dispose();
  }, 120_000);
});
