// Dev script: where the time of `cellseg predict` goes on one image, before and after the
// region-packed paste. After a warm-up run (shader compiles), with the load average:
//   --old     the previous inference flow in stages: forward (backbone + FPN + FCOS head +
//             proposals read back), roi (ROI heads on every proposal), paste (full [N, H, W] u32
//             tensor read back, a full mask per detection, maskToCrop as the predictor did)
//   default   predictGray now (CenterMask.inference + crops), and with --tta the 4-pass TTA
//   --paste   the paste alone on synthetic cell-sized boxes at 704x520: N = 80 old and new,
//             N = 300 new (old: over the 128 MiB binding limit)
//   npx tsx scripts/dev/predict-timing.ts [--weights W] [--config C] [--image PNG] [--repeats 2] [--old] [--tta] [--paste]
// Measured (2-core lavapipe host shared with other jobs, load average 9.5-12; the `npm start`
// checkpoint, output/model, 4 iterations, network input 130x96 for the 704x520 test image):
//   old flow: 296 proposals, all empty once scaled and clipped (0 kept): forward 4.1 s, ROI heads
//     on all 296 83 s, paste 0 s, total 87 s; predictGray now 3.4 s (the empty boxes are dropped
//     before the ROI heads), in the same process.
//   ROI heads at 296 detections: mask head 63-72 s of which the spatial-attention mean and max
//     over channels 32 s (engine/ops/reduce permute + row reduce), deconv 21-23 s, the two 3x3
//     convs 16 s; MaskIoU head 12-15 s; ROI align 3 s.
//   paste alone, 80 cell-sized boxes at 704x520: old 4.2-5.9 s, new 44-114 ms; 300 boxes: old
//     fails (over the binding limit), new 38-131 ms.
import { loadavg } from 'node:os';
import { init, rt } from '../../runtime/runtime';
import { noGrad } from '../../engine/autograd';
import { scopeAsync } from '../../engine/tensor';
import { loadConfig } from '../../models/config/config';
import { CenterMask } from '../../models/centermask';
import { fcosPredictProposals } from '../../models/fcos/inference';
import { detectorPostprocess, pasteDetectionMasks, postprocessBoxes } from '../../models/postprocess';
import { fromArray } from '../../engine/tensor';
import { maskToCrop } from '../../structures/mask-crop';
import { Rng } from '../../runtime/rng';
import { readPngGray } from '../../pipeline/io/png';
import { loadPretrainedWeights } from '../../pipeline/engine/checkpoint';
import { prepareImage } from '../../pipeline/data/train-loader';
import { predictGray, predictorOptionsFromConfig } from '../../pipeline/engine/predictor';

const arg = (k: string, d: string): string => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? process.argv[i + 1]! : d;
};
const weights = arg('--weights', 'output/model/model_final.safetensors');
const config = arg('--config', 'output/model/config.yaml');
const image = arg('--image', 'output/data/test/aa8cfbddac0e.png');
const repeats = Number(arg('--repeats', '2'));
const tta = process.argv.includes('--tta');
const old = process.argv.includes('--old');
const pasteOnly = process.argv.includes('--paste');

await init();
const cfg = loadConfig(config, []);
const model = new CenterMask(cfg);
const r = await loadPretrainedWeights(weights, model);
if (r.missing.length) throw new Error(`${weights}: ${r.missing.length} tensors missing`);
model.eval();
const png = readPngGray(image);
const opts = predictorOptionsFromConfig(cfg, [1, 2, 3]);
const { input } = prepareImage(png.data, png.width, png.height, opts.minSize, opts.maxSize);
const la = () => loadavg().map((v) => v.toFixed(2)).join(' ');
console.log(`image ${png.width}x${png.height} -> network ${input.width}x${input.height}; load ${la()}`);

/** The previous postprocess paste: one [N, H, W] u32 tensor read back, full masks, maskToCrop. */
async function oldPaste(maskProbs: Parameters<typeof pasteDetectionMasks>[0], keep: Int32Array, boxes: Float32Array, H: number, W: number): Promise<number> {
  if (keep.length === 0) return 0;
  const bits = await scopeAsync(async () => (await pasteDetectionMasks(maskProbs, keep, boxes, [H, W]).data()) as Uint32Array);
  let on = 0;
  for (let j = 0; j < keep.length; j++) on += maskToCrop(Uint8Array.from(bits.subarray(j * H * W, (j + 1) * H * W)), W, H).width;
  return on;
}

// The previous body of CenterMask.inference, split into timed stages (private members reached on purpose).
const m = model as unknown as Record<string, (...a: unknown[]) => unknown>;
async function oldStages(): Promise<Record<string, number>> {
  const f = cfg.MODEL.FCOS;
  return scopeAsync(async () => {
    const t0 = performance.now();
    const { features, head } = noGrad(() => {
      const x = m.preprocess!.call(model, [input]);
      const { features } = (model.backbone.forward as (x: unknown) => { features: Record<string, unknown> })(x);
      return { features, head: model.fcosHead.forward(m.headInputs!.call(model, features) as never) };
    });
    const { locations, strides } = m.fcosGeometry!.call(model, head) as { locations: never; strides: never };
    const [p] = await fcosPredictProposals(head, { locations, strides, scoreThreshold: f.INFERENCE_TH_TEST, preNmsTopK: f.PRE_NMS_TOPK_TEST, nmsThreshold: f.NMS_TH, postNmsTopK: f.POST_NMS_TOPK_TEST });
    const det = { boxes: (await p!.proposals.boxes.data()) as Float32Array, scores: (await p!.proposals.scores.data()) as Float32Array, classes: (await p!.proposals.classes.data()) as Int32Array };
    const t1 = performance.now();
    const [roi] = noGrad(() => model.roiHeads!.inference(m.roiFeatures!.call(model, features) as never, [det], [[input.height, input.width]]));
    await roi!.maskScores.data();
    const t2 = performance.now();
    const { boxes, keep } = postprocessBoxes(det.boxes, [input.height, input.width], [png.height, png.width]);
    await oldPaste(roi!.maskProbs, keep, boxes, png.height, png.width);
    const t3 = performance.now();
    return { detections: det.scores.length, kept: keep.length, forward: t1 - t0, roi: t2 - t1, paste: t3 - t2, total: t3 - t0 };
  });
}

/** N cell-sized boxes (8..60 px) in a 704 x 520 image, random 28 x 28 probabilities. */
async function pasteBench(n: number, withOld: boolean): Promise<string> {
  const [H, W, R] = [520, 704, 28];
  const rng = new Rng(n);
  const boxes = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const x = rng.uniform(0, W - 10);
    const y = rng.uniform(0, H - 10);
    boxes.set([x, y, Math.min(x + rng.uniform(8, 60), W), Math.min(y + rng.uniform(8, 60), H)], 4 * i);
  }
  const probs = fromArray(Float32Array.from({ length: n * R * R }, () => rng.next()), [n, 1, R, R]);
  const args = { boxes, scores: new Float32Array(n).fill(0.5), classes: new Int32Array(n), maskProbs: probs, inputSize: [H, W] as [number, number], outputSize: [H, W] as [number, number] };
  const keep = Int32Array.from({ length: n }, (_, i) => i);
  let line = `paste N=${n}:`;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    const r = await detectorPostprocess({ ...args, fullMasks: false });
    const t1 = performance.now();
    line += ` new ${(t1 - t0).toFixed(0)} ms (${r.maskRegions.length} regions)`;
    if (withOld) {
      await oldPaste(probs, keep, boxes, H, W);
      line += `, old ${(performance.now() - t1).toFixed(0)} ms;`;
    }
  }
  probs.dispose();
  return `${line} load ${la()}`;
}

if (pasteOnly) {
  console.log(await pasteBench(80, true));
  console.log(await pasteBench(300, false));
  process.exit(0);
}
for (let i = 0; i <= repeats; i++) {
  let line = i === 0 ? 'warm-up:' : `run ${i}:`;
  if (old) {
    const s = await oldStages();
    line += ` old flow: ${s.detections} detections (${s.kept} kept), forward ${s.forward.toFixed(0)} ms, roi ${s.roi.toFixed(0)} ms, paste ${s.paste.toFixed(0)} ms, total ${s.total.toFixed(0)} ms;`;
  }
  const t0 = performance.now();
  const preds = await predictGray(model, png.data, png.width, png.height, opts);
  line += ` predictGray ${(performance.now() - t0).toFixed(0)} ms (${preds.length} instances)`;
  if (tta) {
    const t1 = performance.now();
    const fused = await predictGray(model, png.data, png.width, png.height, { ...opts, tta: true });
    line += `; TTA ${(performance.now() - t1).toFixed(0)} ms (${fused.length} fused)`;
  }
  console.log(`${line}; load ${la()}`);
}
