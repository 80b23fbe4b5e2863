// Benchmark suite `model`: CenterMask lite V-39 and V-19-slim, forward and forward + backward,
// split by module (VoVNet backbone, FPN, FCOS head, SAG-Mask head on a fixed number of ROIs,
// MaskIoU head, losses), plus the whole training step (CenterMask.losses + backward + SGD step)
// end to end. Per phase: median wall ms over the repeats (each phase ends in `await rt().sync()`)
// and the peak of live GPU bytes during the phase (`rt().pool.resetPeak()` before it).
//
// How the split works: every module boundary is cut with detached leaf tensors (requiresGrad), so
// each module's forward and backward run on their own. Backward runs in reverse order; each
// module's backward receives the gradients its outputs collected in the leaves downstream (chain
// rule), so the sum of the module backwards is one full backward. A module with several outputs
// backpropagates sum_i <out_i, grad_i> (one small mul + sum per output: negligible next to convs).
//
// Sizes (lavapipe runs shaders on the CPU, so the spec's 512x512 batch 2 takes minutes):
//   quick (default): 256x256, batch 1, 20 ROIs per image, 12 cells per image
//   full:            512x512, batch 2, 50 ROIs per image, 40 cells per image (the peer's size)
// Choose with BENCH_MODEL=quick|full; BENCH_MODEL_CONFIGS=V19slim,V39 picks models; any of
// BENCH_MODEL_SIZE / _BATCH / _ROIS / _CELLS overrides one number; BENCH_MODEL_STEP=0 skips the
// end-to-end training step, BENCH_MODEL_INFER=0 the noGrad forward, BENCH_MODEL_MODULES=0 the
// per-module forward + backward; BENCH_MODEL_AMP=1 adds the training step under mixed precision
// (autocast + GradScaler, SOLVER.AMP.ENABLED) next to the f32 one. 1 warm-up + 2 repeats unless
// --repeats says otherwise. Standalone: `npx tsx bench/suites/model.ts [--quick|--full]
// [--configs V19slim,V39] [--repeats N] [--out PATH | --no-save] [--json FILE]`, which saves its
// record as `npm run bench` does.
//
// The peer (the real CenterMask2 on PyTorch CPU, 2 threads) is NOT re-measured here: peer_ms is
// the anchor recorded in bench/results/pytorch-cpu-anchors.json, which exists for 512x512 batch 2
// only, so only full-size rows carry it. ratio = peer_ms / ms (above 1: we are faster).
//
// The LIVECell-size training steps are the suite model-scale.ts (`npm run bench -- model-scale`).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { BenchContext, BenchRow, BenchSuite } from '../types';
import { median } from '../harness';
import { add, backward, binaryCrossEntropyWithLogits, fromArray, indexSelect, init, mul, noGrad, randn, reshape, rt, scopeAsync, sigmoid, sum, type Tensor } from '../../engine';
import { GradScaler, SGD } from '../../engine/optim';
import { autocast, autocastAvailable } from '../../engine/amp/autocast';
import { CenterMask, type GtInstances, type ImageInput } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import type { FPN } from '../../models/fpn';
import type { FCOSHeadOutputs } from '../../models/fcos/head';
import { computeLocations, levelShapesOf } from '../../models/fcos/locations';
import { computeFcosTargets } from '../../models/fcos/targets';
import { fcosLosses } from '../../models/fcos/losses';
import { poolRois } from '../../models/roi/pooler';
import { maskTargets } from '../../models/roi/targets';
import { maskIouLoss, maskIouTargetsOnDevice } from '../../models/roi/heads';
import { Rng } from '../../runtime/rng';

// ---- cases and anchors ----------------------------------------------------------------------

export interface ModelSpec {
  name: 'V39' | 'V19slim';
  config: string;
  /** PyTorch CPU anchor, 512x512 batch 2, 2 threads: full training step (many proposals). */
  peerStep: { ms: number; note: string };
  /** PyTorch CPU anchor: the same step when only GT boxes reach the mask head (~40 ROIs/image). */
  peerGtOnly: { ms: number; note: string };
}

/** One row of bench/results/pytorch-cpu-anchors.json (the fields this suite reads). */
interface AnchorRow {
  suite: string;
  config?: string;
  input?: string;
  batch?: number;
  threads?: number;
  kind?: string;
  ms: number;
  ms_min?: number;
  ms_max?: number;
}

const ANCHORS_FILE = new URL('../results/pytorch-cpu-anchors.json', import.meta.url);

/** The PyTorch CPU anchor for a config at 512x512, batch 2, 2 threads (`kind`: a row's kind). */
function anchor(rows: AnchorRow[], config: string, kind: string): { ms: number; note: string } {
  const name = config.replace(/^.*\//, '').replace(/\.yaml$/, '');
  const r = rows.find((a) => a.suite === 'model' && a.config === name && a.input === '512x512' && a.batch === 2 && a.threads === 2 && a.kind === kind);
  if (!r) throw new Error(`${ANCHORS_FILE.pathname}: no PyTorch CPU anchor '${kind}' for ${name} at 512x512 batch 2, 2 threads`);
  const s = (ms: number) => String(ms / 1000);
  const measured = r.ms_min !== undefined && r.ms_max !== undefined ? `${s(r.ms_min)}-${s(r.ms_max)} s (midpoint)` : `${s(r.ms)} s`;
  return { ms: r.ms, note: `PyTorch CPU anchor ${measured}${kind === 'train step' ? '' : `, ${kind.replace(/^train step, /, '')}`}, not re-measured` };
}

function models(): ModelSpec[] {
  const rows = (JSON.parse(readFileSync(ANCHORS_FILE, 'utf8')) as { rows: AnchorRow[] }).rows;
  const spec = (name: ModelSpec['name'], config: string): ModelSpec => ({
    name,
    config,
    peerStep: anchor(rows, config, 'train step'),
    peerGtOnly: anchor(rows, config, 'train step, GT boxes only to the mask head'),
  });
  return [spec('V19slim', 'configs/centermask_lite_V_19_slim_eSE_FPN_ms_4x.yaml'), spec('V39', 'configs/centermask_lite_V_39_eSE_FPN_ms_4x.yaml')];
}

export const MODELS: ModelSpec[] = models();

export interface ModelBenchOptions {
  models: ModelSpec['name'][];
  /** Image width (and height unless `height` is given). */
  size: number;
  height?: number;
  batch: number;
  roisPerImage: number;
  cellsPerImage: number;
  /** Time the end-to-end training step (CenterMask.losses + backward + SGD). */
  step: boolean;
  repeats: number;
  warmup: number;
  /** Run the noGrad (inference) forward chain too. */
  inference: boolean;
  /** Run the per-module forward + backward chain (default true). */
  modules?: boolean;
  /** Also time the training step under mixed precision (autocast + GradScaler). */
  amp?: boolean;
}

export const QUICK: Omit<ModelBenchOptions, 'repeats' | 'warmup'> = { models: ['V19slim', 'V39'], size: 256, batch: 1, roisPerImage: 20, cellsPerImage: 12, step: true, inference: true };
export const FULL: Omit<ModelBenchOptions, 'repeats' | 'warmup'> = { models: ['V19slim', 'V39'], size: 512, batch: 2, roisPerImage: 50, cellsPerImage: 40, step: true, inference: true };

/** Peer anchors exist for 512x512, batch 2 only. */
const isAnchorSize = (o: ModelBenchOptions) => o.size === 512 && o.batch === 2;

// ---- synthetic scene ------------------------------------------------------------------------

interface Scene {
  inputs: ImageInput[];
  gts: GtInstances[];
  /** Per image: fixed ROIs (jittered GT boxes, all foreground) and their GT's class / polygons. */
  rois: Float32Array[];
  roiClasses: Int32Array;
  roiPolygons: number[][][];
}

/** Elliptic "cells" (16-gon polygons) on a dark noisy background, BGR 0..255. */
export function makeScene(o: ModelBenchOptions, seed: number): Scene {
  const rng = new Rng(seed);
  const W = o.size;
  const H = o.height ?? o.size;
  const inputs: ImageInput[] = [];
  const gts: GtInstances[] = [];
  const rois: Float32Array[] = [];
  const roiClasses: number[] = [];
  const roiPolygons: number[][][] = [];
  for (let n = 0; n < o.batch; n++) {
    const image = new Float32Array(3 * H * W);
    for (let i = 0; i < image.length; i++) image[i] = 30 + 20 * rng.next();
    const boxes: number[] = [];
    const classes: number[] = [];
    const polygons: number[][][] = [];
    for (let c = 0; c < o.cellsPerImage; c++) {
      const rx = rng.uniform(0.02, 0.06) * W, ry = rng.uniform(0.02, 0.06) * H;
      const cx = rng.uniform(rx + 1, W - rx - 1), cy = rng.uniform(ry + 1, H - ry - 1);
      const poly: number[] = [];
      for (let k = 0; k < 16; k++) poly.push(cx + rx * Math.cos((k * Math.PI) / 8), cy + ry * Math.sin((k * Math.PI) / 8));
      boxes.push(cx - rx, cy - ry, cx + rx, cy + ry);
      classes.push(rng.int(0, 3));
      polygons.push([poly]);
      for (let y = Math.floor(cy - ry); y <= Math.ceil(cy + ry); y++) {
        for (let x = Math.floor(cx - rx); x <= Math.ceil(cx + rx); x++) {
          if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) for (let ch = 0; ch < 3; ch++) image[(ch * H + y) * W + x] = 170 + 40 * rng.next();
        }
      }
    }
    inputs.push({ image, height: H, width: W, origHeight: H, origWidth: W });
    gts.push({ boxes: Float32Array.from(boxes), classes: Int32Array.from(classes), polygons });
    // ROIs: GT boxes jittered by up to 10% of their size (IoU stays > 0.5: foreground ROIs).
    const r = new Float32Array(4 * o.roisPerImage);
    for (let i = 0; i < o.roisPerImage; i++) {
      const g = i % o.cellsPerImage;
      const w = boxes[4 * g + 2]! - boxes[4 * g]!, h = boxes[4 * g + 3]! - boxes[4 * g + 1]!;
      for (let k = 0; k < 4; k++) r[4 * i + k] = boxes[4 * g + k]! + rng.uniform(-0.1, 0.1) * (k % 2 ? h : w);
      roiClasses.push(classes[g]!);
      roiPolygons.push(polygons[g]!);
    }
    rois.push(r);
  }
  return { inputs, gts, rois, roiClasses: Int32Array.from(roiClasses), roiPolygons };
}

// ---- module phases ----------------------------------------------------------------------------

/** A detached copy of `t` that is a gradient leaf: cuts the graph at a module boundary. */
function leaf(t: Tensor): Tensor {
  const l = t.detach();
  l.requiresGrad = true;
  return l;
}

/** Backward of a module with several outputs: d/d(params, inputs) of sum_i <out_i, grad_i>. */
function backwardMany(outs: Tensor[], grads: (Tensor | null)[]): void {
  const pairs = outs.map((o, i) => [o, grads[i]] as const).filter((p): p is readonly [Tensor, Tensor] => p[1] !== null && p[0].requiresGrad);
  if (pairs.length === 0) return;
  if (pairs.length === 1) return backward(pairs[0]![0], pairs[0]![1]);
  const total = pairs.map(([o, g]) => sum(mul(o, g))).reduce((a, b) => add(a, b));
  backward(total);
}

/** FPN without its bottom-up network: the FPN's own forward, fed precomputed VoVNet features. */
function fpnOnly(fpn: FPN, bottom: Record<string, Tensor>): Record<string, Tensor> {
  // FPN.forward calls this.bottomUp.forward first; an object inheriting every field of `fpn`
  // but with a bottomUp that returns the given features runs exactly the FPN's own code.
  const shim = Object.create(fpn, { bottomUp: { value: { forward: () => bottom } } }) as FPN;
  return fpn.forward.call(shim, bottom[Object.keys(bottom)[0]!]!).features;
}

const headList = (h: FCOSHeadOutputs) => [...h.logits, ...h.bboxReg, ...h.ctrness];

/** Row r*K + class[r] of an [R*K, ...] tensor (each ROI's class channel). */
function classRows(classes: Int32Array, k: number): Tensor {
  return fromArray(Int32Array.from(classes, (c, r) => r * k + c), [classes.length], 'i32');
}

const PHASES = ['backbone', 'fpn', 'fcos_head', 'mask_head', 'maskiou_head', 'losses'] as const;
type Phase = (typeof PHASES)[number];

interface PhaseSample {
  ms: number;
  peakBytes: number;
  /** Live bytes when the phase started (weights, gradients, optimizer state, inputs). */
  baseBytes: number;
  /** Train step: live bytes after the forward (losses computed), before backward. */
  forwardBytes?: number;
}

/** Run `fn`, wait for the GPU, return its wall time and the peak live bytes while it ran. */
async function phase<T>(fn: (mark: () => void) => T | Promise<T>, into: PhaseSample[]): Promise<T> {
  await rt().sync();
  rt().pool.resetPeak();
  const baseBytes = rt().pool.getStats().liveBytes;
  let forwardBytes: number | undefined;
  const t0 = performance.now();
  const out = await fn(() => (forwardBytes = rt().pool.getStats().liveBytes));
  await rt().sync();
  into.push({ ms: performance.now() - t0, peakBytes: rt().stats().peakBytes, baseBytes, forwardBytes });
  return out;
}

export type Samples = Record<string, PhaseSample[]>;
const push = (s: Samples, key: string): PhaseSample[] => (s[key] ??= []);

/** One pass of the module chain: forward phases, then (with grad) backward phases in reverse. */
async function moduleChain(model: CenterMask, x: Tensor, scene: Scene, train: boolean, s: Samples): Promise<void> {
  const cfg = model.cfg;
  const roi = model.roiHeads!;
  const K = cfg.MODEL.ROI_HEADS.NUM_CLASSES;
  const M = 2 * roi.resolution;
  const tag = train ? 'fwd' : 'infer';
  const cut = (t: Tensor) => (train ? leaf(t) : t);
  await scopeAsync(async () => {
    const bottom = await phase(() => model.backbone.bottomUp.forward(x), push(s, `backbone.${tag}`));
    const fpnIn: Record<string, Tensor> = {};
    for (const f of model.backbone.opts.inFeatures) fpnIn[f] = cut(bottom[f]!);
    const features = await phase(() => fpnOnly(model.backbone, fpnIn), push(s, `fpn.${tag}`));
    const featLeaves: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(features)) featLeaves[k] = cut(v);
    const head = await phase(() => model.fcosHead.forward(cfg.MODEL.FCOS.IN_FEATURES.map((f) => featLeaves[f]!)), push(s, `fcos_head.${tag}`));
    const rows = classRows(scene.roiClasses, K);
    const R = scene.roiClasses.length;
    const mask = await phase(() => {
      const feats = cfg.MODEL.ROI_HEADS.IN_FEATURES.map((f) => featLeaves[f]!);
      const { pooled } = poolRois(feats, scene.rois, scene.inputs.map((b) => [b.height, b.width]), {
        outputSize: roi.resolution,
        scales: roi.opts.strides.map((st) => 1 / st),
        samplingRatio: roi.opts.samplingRatio ?? 0,
      });
      const logits = roi.maskHead.forward(pooled);
      const selected = indexSelect(reshape(logits, [R * K, M, M]), 0, rows);
      const probs = reshape(sigmoid(selected), [R, 1, M, M]);
      return { pooled, selected, probs };
    }, push(s, `mask_head.${tag}`));
    const pooledLeaf = cut(mask.pooled);
    const probsLeaf = cut(mask.probs);
    const iou = await phase(() => indexSelect(reshape(roi.maskIouHead!.forward(pooledLeaf, probsLeaf), [R * K]), 0, rows), push(s, `maskiou_head.${tag}`));
    if (!train) return;

    const headLeaves = headList(head).map(leaf);
    const selectedLeaf = leaf(mask.selected);
    const iouLeaf = leaf(iou);
    const total = await phase(() => {
      const L = head.logits.length;
      const levels: FCOSHeadOutputs = { logits: headLeaves.slice(0, L), bboxReg: headLeaves.slice(L, 2 * L), ctrness: headLeaves.slice(2 * L) };
      const f = cfg.MODEL.FCOS;
      const strides = f.IN_FEATURES.map((n) => model.backbone.strides[model.backbone.levelNames.indexOf(n)]!);
      const locations = computeLocations(levelShapesOf(levels.logits.map((t) => t.shape)), strides);
      const targets = computeFcosTargets(locations, scene.gts, { numClasses: f.NUM_CLASSES, strides, sizesOfInterest: f.SIZES_OF_INTEREST, centerSample: f.CENTER_SAMPLE, radius: f.POS_RADIUS });
      const fcos = fcosLosses(levels, targets, { focalAlpha: f.LOSS_ALPHA, focalGamma: f.LOSS_GAMMA, locLossType: f.LOC_LOSS_TYPE as 'giou' });
      const mt = maskTargets(scene.rois.length === 1 ? scene.rois[0]! : concatF32(scene.rois), scene.roiPolygons.map((polygons) => ({ polygons })), M);
      const targetT = fromArray(mt.targets, [R, M, M]);
      const lossMask = binaryCrossEntropyWithLogits(selectedLeaf, targetT);
      const iouTargets = maskIouTargetsOnDevice(selectedLeaf, targetT, Float32Array.from(mt.fullAreas));
      const lossIou = maskIouLoss(iouLeaf, iouTargets, cfg.MODEL.MASKIOU_LOSS_WEIGHT);
      return [fcos.loss_fcos_cls, fcos.loss_fcos_loc, fcos.loss_fcos_ctr, lossMask, lossIou].reduce((a, b) => add(a, b));
    }, push(s, 'losses.fwd'));

    const g = (t: Tensor) => t.grad ?? null;
    await phase(() => backward(total), push(s, 'losses.bwd'));
    await phase(() => backwardMany([iou], [g(iouLeaf)]), push(s, 'maskiou_head.bwd'));
    await phase(() => backwardMany([mask.selected, mask.probs, mask.pooled], [g(selectedLeaf), g(probsLeaf), g(pooledLeaf)]), push(s, 'mask_head.bwd'));
    await phase(() => backwardMany(headList(head), headLeaves.map(g)), push(s, 'fcos_head.bwd'));
    const names = Object.keys(features);
    await phase(() => backwardMany(names.map((k) => features[k]!), names.map((k) => g(featLeaves[k]!))), push(s, 'fpn.bwd'));
    const inNames = Object.keys(fpnIn);
    await phase(() => backwardMany(inNames.map((k) => bottom[k]!), inNames.map((k) => g(fpnIn[k]!))), push(s, 'backbone.bwd'));
    for (const l of [...headLeaves, selectedLeaf, iouLeaf, pooledLeaf, probsLeaf, ...Object.values(featLeaves), ...Object.values(fpnIn)]) {
      l.grad?.dispose();
      l.grad = null;
    }
    model.zeroGrad();
  });
}

function concatF32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The whole training step as a user runs it: losses (incl. FCOS proposals + NMS + sampling), backward, SGD. */
export async function trainStep(model: CenterMask, opt: SGD, scene: Scene, s: Samples, scaler: GradScaler | null = null): Promise<void> {
  await phase(
    (mark) =>
      scopeAsync(async () => {
        if (scaler) {
          // SOLVER.AMP.ENABLED's step: forward under autocast, scaled backward, unscale + step + update.
          const losses = await autocast(() => model.losses(scene.inputs, scene.gts));
          mark();
          backward(scaler.scale(Object.values(losses).reduce((a, b) => add(a, b))));
          scaler.step(opt);
          scaler.update();
        } else {
          const losses = await model.losses(scene.inputs, scene.gts);
          mark();
          backward(Object.values(losses).reduce((a, b) => add(a, b)));
          opt.step();
        }
        model.zeroGrad();
      }),
    push(s, 'step'),
  );
}

export const mb = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

export function summarize(samples: PhaseSample[]): { ms: number; min: number; peak_mb: number; above_start_mb: number; forward_mb: number } {
  return {
    ms: median(samples.map((x) => x.ms)),
    min: Math.min(...samples.map((x) => x.ms)),
    peak_mb: mb(Math.max(...samples.map((x) => x.peakBytes))),
    // The peak over what was live when the phase started: the step's activations and temporaries.
    above_start_mb: mb(Math.max(...samples.map((x) => x.peakBytes - x.baseBytes))),
    // Train step: what the forward left live for the backward (activations, f16 weight copies).
    forward_mb: mb(Math.max(...samples.map((x) => (x.forwardBytes ?? x.baseBytes) - x.baseBytes))),
  };
}

/** Every row for one model at the given sizes. */
async function benchModel(spec: ModelSpec, o: ModelBenchOptions, log: (m: string) => void): Promise<BenchRow[]> {
  const cfg = loadConfig(spec.config, ['MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3']);
  const model = new CenterMask(cfg);
  model.train();
  const scene = makeScene(o, 7);
  const x = noGrad(() => randn([o.batch, 3, o.size, o.size], 11)).keep();
  const where = `${o.size}x${o.size} b${o.batch}`;
  const rois = `${o.roisPerImage} ROIs/img`;
  const rows: BenchRow[] = [];
  const base = (c: string): { suite: string; case: string } => ({ suite: 'model', case: `${spec.name} ${where} ${c}` });

  const timeChain = async (train: boolean): Promise<Samples> => {
    const s: Samples = {};
    for (let i = 0; i < o.warmup; i++) await (train ? moduleChain(model, x, scene, true, {}) : noGrad(() => moduleChain(model, x, scene, false, {})));
    for (let i = 0; i < o.repeats; i++) {
      const t0 = performance.now();
      await (train ? moduleChain(model, x, scene, true, s) : noGrad(() => moduleChain(model, x, scene, false, s)));
      log(`${spec.name} ${train ? 'fwd+bwd' : 'inference'} chain ${i + 1}/${o.repeats}: ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
    }
    return s;
  };

  if (o.inference) {
    const s = await timeChain(false);
    let total = 0;
    for (const p of PHASES) {
      if (!s[`${p}.infer`]) continue;
      const r = summarize(s[`${p}.infer`]!);
      total += r.ms;
      rows.push({ ...base(`fwd (noGrad) ${p}${p.startsWith('mask') ? ` (${rois})` : ''}`), ms: r.ms, min_ms: r.min, peak_mb: r.peak_mb });
    }
    rows.push({ ...base(`fwd (noGrad) total of modules (${rois})`), ms: total });
  }

  if (o.modules !== false) rows.push(...(await moduleRows(timeChain, spec, o, base, rois, log)));

  if (o.step) {
    if (o.amp && !autocastAvailable()) log('BENCH_MODEL_AMP: this adapter has no shader-f16; no AMP row');
    for (const amp of o.amp && autocastAvailable() ? [false, true] : [false]) {
      const opt = new SGD(
        model.parameters().filter((p) => p.requiresGrad),
        // The first iterations of the real schedule run at BASE_LR x WARMUP_FACTOR: stable on random weights.
        { lr: cfg.SOLVER.BASE_LR * cfg.SOLVER.WARMUP_FACTOR, momentum: cfg.SOLVER.MOMENTUM, weightDecay: cfg.SOLVER.WEIGHT_DECAY },
      );
      const scaler = amp ? new GradScaler() : null;
      const st: Samples = {};
      for (let i = 0; i < o.warmup; i++) await trainStep(model, opt, scene, {}, scaler);
      for (let i = 0; i < o.repeats; i++) {
        await trainStep(model, opt, scene, st, scaler);
        log(`${spec.name} train step${amp ? ' (AMP)' : ''} ${i + 1}/${o.repeats}: ${(st.step!.at(-1)!.ms / 1e3).toFixed(1)} s`);
      }
      const r = summarize(st.step!);
      const peer = isAnchorSize(o) && !amp ? { peer: 'pytorch-cpu', peer_ms: spec.peerStep.ms, ratio: spec.peerStep.ms / r.ms, peer_note: spec.peerStep.note } : {};
      const what = amp ? 'train step end to end, AMP (autocast+GradScaler: losses+backward+SGD' : 'train step end to end (losses+backward+SGD';
      rows.push({ ...base(`${what}, ${o.cellsPerImage} cells/img)`), ms: r.ms, min_ms: r.min, peak_mb: r.peak_mb, above_start_mb: r.above_start_mb, forward_mb: r.forward_mb, ...peer });
      opt.dispose();
      scaler?.dispose();
    }
  }
  x.dispose();
  return rows;
}

/** The per-module forward + backward rows (the module chain with grad). */
async function moduleRows(
  timeChain: (train: boolean) => Promise<Samples>,
  spec: ModelSpec,
  o: ModelBenchOptions,
  base: (c: string) => { suite: string; case: string },
  rois: string,
  log: (m: string) => void,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const s = await timeChain(true);
  let fwdTotal = 0;
  let bwdTotal = 0;
  let peak = 0;
  for (const p of PHASES) {
    const f = summarize(s[`${p}.fwd`]!);
    const b = summarize(s[`${p}.bwd`]!);
    fwdTotal += f.ms;
    bwdTotal += b.ms;
    peak = Math.max(peak, f.peak_mb, b.peak_mb);
    const label = `${p}${p.startsWith('mask') ? ` (${rois})` : ''}`;
    rows.push({ ...base(`fwd ${label}`), ms: f.ms, min_ms: f.min, peak_mb: f.peak_mb });
    rows.push({ ...base(`bwd ${label}`), ms: b.ms, min_ms: b.min, peak_mb: b.peak_mb });
    rows.push({ ...base(`fwd+bwd ${label}`), ms: f.ms + b.ms });
  }
  const anchor = isAnchorSize(o) ? { peer: 'pytorch-cpu', peer_ms: spec.peerGtOnly.ms, ratio: spec.peerGtOnly.ms / (fwdTotal + bwdTotal), peer_note: `${spec.peerGtOnly.note}; peer includes the SGD step` } : {};
  rows.push({ ...base(`fwd total of modules (${rois})`), ms: fwdTotal });
  rows.push({ ...base(`fwd+bwd total of modules (${rois})`), ms: fwdTotal + bwdTotal, peak_mb: peak, ...anchor });
  log(`${spec.name} modules: fwd ${fwdTotal.toFixed(0)} ms, fwd+bwd ${(fwdTotal + bwdTotal).toFixed(0)} ms`);
  return rows;
}

// ---- options and entry points -----------------------------------------------------------------

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got '${v}'`);
  return n;
}

function parseModels(list: string): ModelSpec['name'][] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!MODELS.some((m) => m.name === n)) throw new Error(`unknown model '${n}' (have: ${MODELS.map((m) => m.name).join(', ')})`);
  return names as ModelSpec['name'][];
}

/** Options from BENCH_MODEL* environment variables (and flags when run standalone). */
export function optionsFromEnv(mode: 'quick' | 'full' | undefined, repeats: number | undefined, models?: string): ModelBenchOptions {
  const m = mode ?? (process.env.BENCH_MODEL as 'quick' | 'full' | undefined) ?? 'quick';
  if (m !== 'quick' && m !== 'full') throw new Error(`BENCH_MODEL must be 'quick' or 'full' (the LIVECell-size steps are the suite model-scale: npm run bench -- model-scale), got '${m}'`);
  const base = m === 'full' ? FULL : QUICK;
  const o: ModelBenchOptions = {
    ...base,
    models: parseModels(models ?? process.env.BENCH_MODEL_CONFIGS ?? base.models.join(',')),
    size: envNumber('BENCH_MODEL_SIZE') ?? base.size,
    batch: envNumber('BENCH_MODEL_BATCH') ?? base.batch,
    roisPerImage: envNumber('BENCH_MODEL_ROIS') ?? base.roisPerImage,
    cellsPerImage: envNumber('BENCH_MODEL_CELLS') ?? base.cellsPerImage,
    step: process.env.BENCH_MODEL_STEP !== '0',
    inference: process.env.BENCH_MODEL_INFER !== '0',
    modules: process.env.BENCH_MODEL_MODULES !== '0',
    amp: process.env.BENCH_MODEL_AMP === '1',
    repeats: repeats ?? 2,
    warmup: 1,
  };
  if (o.size % 32) throw new Error(`BENCH_MODEL_SIZE must be a multiple of 32 (the backbone's size divisibility), got ${o.size}`);
  return o;
}

/** Run the model benchmark with explicit options (the suite entry and the test use this). */
export async function runModelBench(o: ModelBenchOptions, log: (m: string) => void = () => {}): Promise<BenchRow[]> {
  await init();
  const rows: BenchRow[] = [];
  log(`sizes: ${o.size}x${o.size}, batch ${o.batch}, ${o.roisPerImage} ROIs/img, ${o.cellsPerImage} cells/img, ${o.warmup} warm-up + ${o.repeats} repeats`);
  for (const name of o.models) rows.push(...(await benchModel(MODELS.find((m) => m.name === name)!, o, log)));
  return rows;
}

export const run: BenchSuite = async (ctx: BenchContext): Promise<BenchRow[]> => runModelBench(optionsFromEnv(undefined, ctx.repeats), ctx.log);

// Standalone: npx tsx bench/suites/model.ts [--quick|--full] [--configs V19slim,V39] [--repeats N]
// [--out PATH | --no-save] [--json FILE]: one result record as `npm run bench` saves it (by default
// into bench/results/); --json FILE also writes the rows as a flat array.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  let mode: 'quick' | 'full' | undefined;
  let repeats: number | undefined;
  let models: string | undefined;
  let json: string | undefined;
  let out: string | undefined;
  let save = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick' || a === '--full') mode = a.slice(2) as 'quick' | 'full';
    else if (a === '--repeats') repeats = Number(argv[++i]);
    else if (a === '--configs') models = argv[++i];
    else if (a === '--json') json = argv[++i];
    else if (a === '--out') out = argv[++i];
    else if (a === '--no-save') save = false;
    else throw new Error(`unknown option ${a} (--quick | --full | --configs V19slim,V39 | --repeats N | --out PATH | --no-save | --json FILE)`);
  }
  const main = async () => {
    const { commandLine, makeRecord, saveRecord } = await import('../run');
    await init({ dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
    const started = new Date();
    const startLoad = (await import('node:os')).loadavg()[0]!;
    const log = (m: string) => console.error(`[model] ${m}`);
    const rows = await runModelBench(optionsFromEnv(mode, repeats, models), log);
    for (const r of rows) console.log(JSON.stringify(r));
    if (save) console.error(`[model] saved ${rows.length} rows to ${saveRecord(makeRecord('model', 'bench/suites/model.ts', commandLine('npx tsx bench/suites/model.ts', argv), started, startLoad, rows), out)}`);
    if (json) (await import('node:fs')).writeFileSync(json, JSON.stringify(rows, null, 2) + '\n');
  };
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
