// FCOS locations, targets, losses and inference against the real CenterMask2 fixtures
// (CENTERMASK2_FIXTURES or ../shared/fixtures/centermask2, every model folder in it). The stored
// FCOS head outputs (features.safetensors) are fed in; the expected values come from
// train.safetensors (fcos_targets.*, loss.*, train_proposals.*) and eval.safetensors (candidates.*,
// proposals.*).
// Every FCOS setting is read from the folder's config.yaml, so other fixture sets in the same format
// (other inputs, sizes, instance counts) are checked the same way.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init, scope, scopeAsync, type Tensor } from '../../engine';
import { readSafetensors } from '../../engine/checkpoint/safetensors';
import type { HostTensor } from '../../engine/checkpoint/host-tensor';
import { loadConfig } from '../../models/config/config';
import { computeLocations } from '../../models/fcos/locations';
import { computeFcosTargets, type FcosTargets } from '../../models/fcos/targets';
import { fcosLosses, type FcosPredictions } from '../../models/fcos/losses';
import { fcosPredictProposals, type FcosDetections } from '../../models/fcos/inference';
import { expectClose } from '../util';
import { fixtureConfig, fixtureDir, fixtureModels } from './fixture-util';

const FIXTURES = fixtureDir();
const MISSING = `CenterMask2 fixtures not found at ${FIXTURES} (set CENTERMASK2_FIXTURES, or put them at ../shared/fixtures/centermask2 next to the repository root)`;

/** Model folders (those with the files these checks read). */
const MODELS = fixtureModels({ files: ['features.safetensors', 'train.safetensors', 'eval.safetensors'] });

beforeAll(async () => {
  await init();
});

it('finds the CenterMask2 fixture folder with at least one model', () => {
  if (!existsSync(FIXTURES)) throw new Error(MISSING);
  expect(MODELS.length, `no model folder with features/train/eval.safetensors in ${FIXTURES}`).toBeGreaterThan(0);
});

type Tensors = Map<string, HostTensor>;

function need(t: Tensors, key: string, file: string): HostTensor {
  const v = t.get(key);
  if (!v) throw new Error(`${file} has no tensor '${key}'`);
  return v;
}
const nums = (h: HostTensor): number[] => Array.from(h.data as ArrayLike<number | bigint>, Number);

/** Exact equality of two number lists, reporting the first mismatch. */
function expectExact(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) throw new Error(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (exact)`);
  }
}

describe.each(MODELS)('FCOS vs CenterMask2 fixtures: %s', (model) => {
  const dir = path.join(FIXTURES, model);
  let features: Tensors;
  let train: Tensors;
  let evalT: Tensors;
  let gtBoxes: number[];
  let gtClasses: number[];
  let levelNames: string[];
  let fcos: ReturnType<typeof loadConfig>['MODEL']['FCOS'];
  let strides: number[];
  let locations: Float32Array[];
  let pred: FcosPredictions;
  let uploaded: Tensor[] = [];

  beforeAll(async () => {
    features = (await readSafetensors(path.join(dir, 'features.safetensors'))).tensors;
    train = (await readSafetensors(path.join(dir, 'train.safetensors'))).tensors;
    evalT = (await readSafetensors(path.join(dir, 'eval.safetensors'))).tensors;
    const input = (await readSafetensors(path.join(FIXTURES, 'input.safetensors'))).tensors;
    gtBoxes = nums(need(input, 'gt.boxes', 'input.safetensors'));
    gtClasses = nums(need(input, 'gt.classes', 'input.safetensors'));
    fcos = fixtureConfig(model).MODEL.FCOS;
    levelNames = [...fcos.IN_FEATURES];
    strides = [...fcos.FPN_STRIDES];
    const host = (kind: string) => levelNames.map((p) => need(features, `fcos.${kind}.${p}`, 'features.safetensors'));
    const shapes = host('logits').map((h) => ({ height: h.shape[2]!, width: h.shape[3]! }));
    locations = computeLocations(shapes, strides);
    const up = (h: HostTensor) => fromArray(h.data as Float32Array, h.shape);
    pred = { logits: host('logits').map(up), bboxReg: host('bbox_reg').map(up), ctrness: host('ctrness').map(up) };
    uploaded = [...pred.logits, ...pred.bboxReg, ...pred.ctrness];
  });
  afterAll(() => uploaded.forEach((t) => t.dispose()));

  const targets = (): FcosTargets =>
    computeFcosTargets(locations, [{ boxes: gtBoxes, classes: gtClasses }], {
      numClasses: fcos.NUM_CLASSES,
      strides,
      sizesOfInterest: fcos.SIZES_OF_INTEREST,
      centerSample: fcos.CENTER_SAMPLE,
      radius: fcos.POS_RADIUS,
    });

  it('locations equal fcos.locations.* exactly', () => {
    levelNames.forEach((p, l) => expectExact(locations[l]!, need(features, `fcos.locations.${p}`, 'features.safetensors').data as Float32Array, `locations ${p}`));
  });

  it('targets: labels and pos_index exactly, reg and centerness targets at the positives', () => {
    const t = targets();
    expectExact(t.labels, nums(need(train, 'fcos_targets.labels', 'train.safetensors')), 'labels');
    const posIndex = nums(need(train, 'fcos_targets.pos_index', 'train.safetensors'));
    expectExact(t.posIndex, posIndex, 'pos_index');
    const regStored = need(train, 'fcos_targets.reg_targets', 'train.safetensors').data as Float32Array;
    const atPos = (a: Float32Array) => posIndex.flatMap((i) => Array.from(a.subarray(4 * i, 4 * i + 4)));
    expectExact(atPos(t.regTargets), atPos(regStored), 'reg_targets at positives');
    expectExact(t.ctrnessTargets, need(train, 'fcos_targets.ctrness_targets_pos', 'train.safetensors').data as Float32Array, 'ctrness_targets_pos');
  });

  it('losses loss_fcos_cls / loc / ctr to 1e-5', async () => {
    const t = targets();
    const values = await scopeAsync(async () => {
      const losses = fcosLosses(pred, t, { focalAlpha: fcos.LOSS_ALPHA, focalGamma: fcos.LOSS_GAMMA, locLossType: fcos.LOC_LOSS_TYPE as 'giou' });
      return {
        cls: await losses.loss_fcos_cls.item(),
        loc: await losses.loss_fcos_loc.item(),
        ctr: await losses.loss_fcos_ctr.item(),
      };
    });
    for (const [name, v] of [['loss_fcos_cls', values.cls], ['loss_fcos_loc', values.loc], ['loss_fcos_ctr', values.ctr]] as const) {
      const expected = nums(need(train, `loss.${name}`, 'train.safetensors'))[0]!;
      expectClose([v], [expected], { atol: 1e-5, rtol: 0, what: `${model} ${name}` });
    }
  });

  async function hostDetections(d: FcosDetections) {
    return {
      boxes: Array.from(await d.boxes.toArray()),
      scores: Array.from(await d.scores.toArray()),
      classes: Array.from(await d.classes.toArray()),
      locations: Array.from(await d.locations.toArray()),
    };
  }

  /** Boxes exactly when `exactBoxes` (same head outputs as the oracle), else to float32 rounding. */
  function expectDetections(actual: Awaited<ReturnType<typeof hostDetections>>, file: Tensors, prefix: string, fileName: string, exactBoxes: boolean) {
    const boxes = need(file, `${prefix}.boxes`, fileName);
    expect(actual.scores.length, `${prefix} count`).toBe(boxes.shape[0]);
    expectExact(actual.classes, nums(need(file, `${prefix}.classes`, fileName)), `${prefix}.classes`);
    if (exactBoxes) expectExact(new Float32Array(actual.boxes), boxes.data as Float32Array, `${prefix}.boxes`);
    // The README's 1e-4 on head outputs (stride units), times the largest stride, in pixels.
    else expectClose(actual.boxes, boxes.data as Float32Array, { atol: 1e-4 * Math.max(...strides), rtol: 0, what: `${prefix}.boxes` });
    const withLocations = file.has(`${prefix}.locations`);
    if (withLocations) expectExact(new Float32Array(actual.locations), need(file, `${prefix}.locations`, fileName).data as Float32Array, `${prefix}.locations`);
    const scoreTol = exactBoxes ? 1e-6 : 1e-4;
    expectClose(actual.scores, need(file, `${prefix}.scores`, fileName).data as Float32Array, { atol: scoreTol, rtol: 0, what: `${prefix}.scores` });
  }

  it('eval: candidates, NMS keep and post-NMS top-k exactly', async () => {
    const got = await scopeAsync(async () => {
      const [r] = await fcosPredictProposals(pred, {
        locations,
        strides,
        scoreThreshold: fcos.INFERENCE_TH_TEST,
        preNmsTopK: fcos.PRE_NMS_TOPK_TEST,
        nmsThreshold: fcos.NMS_TH,
        postNmsTopK: fcos.POST_NMS_TOPK_TEST,
      });
      return { cand: await hostDetections(r!.candidates), prop: await hostDetections(r!.proposals), index: Array.from(await r!.proposals.candidateIndex.toArray()) };
    });
    expectDetections(got.cand, evalT, 'candidates', 'eval.safetensors', true);
    expectExact(got.index, nums(need(evalT, 'proposals.candidate_index', 'eval.safetensors')), 'proposals.candidate_index');
    expectDetections(got.prop, evalT, 'proposals', 'eval.safetensors', true);
  });

  // train_proposals come from the oracle's train-mode forward, whose head outputs differ from the
  // stored (eval-mode) ones by float32 rounding (~3e-5 px in the boxes), so boxes and scores are
  // compared to tolerance; the kept set, its order and the classes must still match exactly.
  it('train: proposals with the training thresholds and top-k (same set and order)', async () => {
    const got = await scopeAsync(async () => {
      const [r] = await fcosPredictProposals(pred, {
        locations,
        strides,
        scoreThreshold: fcos.INFERENCE_TH_TRAIN,
        preNmsTopK: fcos.PRE_NMS_TOPK_TRAIN,
        nmsThreshold: fcos.NMS_TH,
        postNmsTopK: fcos.POST_NMS_TOPK_TRAIN,
      });
      return hostDetections(r!.proposals);
    });
    expectDetections(got, train, 'train_proposals', 'train.safetensors', false);
  });

  it('rejects head outputs that do not match the targets', () => {
    const t = targets();
    scope(() => {
      expect(() => fcosLosses({ ...pred, ctrness: pred.ctrness.slice(1) }, t)).toThrow(/ctrness has/);
      expect(() => fcosLosses({ ...pred, bboxReg: [pred.logits[0]!, ...pred.bboxReg.slice(1)] }, t)).toThrow(/bboxReg level 0/);
    });
  });
});
