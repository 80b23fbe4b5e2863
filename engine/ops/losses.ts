// Detection losses with fused forward and backward kernels: sigmoid focal loss (torchvision),
// binary cross-entropy with logits (PyTorch, weights and pos_weight), smooth L1, MSE (elementwise
// maps), CenterMask2's IoU / GIoU / linear-IoU loss on (l, t, r, b) distances and torchvision's
// generalized_box_iou_loss on boxes (per-row kernels in kernels/detection/losses.ts). Reductions use the
// generic sum/mean ops, so their gradients come from autograd.
import { record } from '../autograd';
import { empty, full, type Tensor } from '../tensor';
import { launchMap } from '../../kernels/elementwise/map';
import { ELEMENTWISE_HELPERS } from '../../kernels/elementwise/table';
import { type IouLossType, launchGiouBox, launchIouLtrb } from '../../kernels/detection/losses';
import { broadcastShapes, mapRaw, mul, neg, toF32 } from './elementwise';
import { mean, sum } from './reduce';

export type Reduction = 'none' | 'mean' | 'sum';

function reduce(loss: Tensor, reduction: Reduction, op: string): Tensor {
  switch (reduction) {
    case 'none':
      return loss;
    case 'sum':
      return sum(loss);
    case 'mean':
      return mean(loss);
    default:
      throw new Error(`${op}: reduction must be 'none', 'mean' or 'sum', got '${reduction as string}'`);
  }
}

function checkSameShape(op: string, a: Tensor, b: Tensor, an: string, bn: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((n, i) => n !== b.shape[i])) {
    throw new Error(`${op}: ${an} [${a.shape}] and ${bn} [${b.shape}] must have the same shape`);
  }
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new Error(`${op}: expected f32 tensors, got ${a.dtype} and ${b.dtype}`);
}

/** Elementwise f32 map with extra helper functions (expressions over a, b, c... and s0..s3). */
function lossMap(name: string, helpers: string, expr: string, inputs: Tensor[], shape: readonly number[], scalars: number[] = []): Tensor {
  const out = empty(shape, 'f32');
  launchMap({ name, expr, inputs, out, scalars, helpers: `${ELEMENTWISE_HELPERS}\n${helpers}` });
  return out;
}

// ---- sigmoid focal loss ------------------------------------------------------------------------

const FOCAL = /* wgsl */ `
// m^e for m >= 0 (pow is undefined at 0 in WGSL).
fn pow_nonneg(m: f32, e: f32) -> f32 {
  if (m <= 0.0) { return select(0.0, 1.0, e == 0.0); }
  return pow(m, e);
}
fn alpha_t(t: f32, alpha: f32) -> f32 { return select(1.0, alpha * t + (1.0 - alpha) * (1.0 - t), alpha >= 0.0); }
fn focal_loss(x: f32, t: f32, alpha: f32, gamma: f32) -> f32 {
  let p = sigmoid_(x);
  let ce = max(x, 0.0) - x * t + log1p_(exp(-abs(x)));
  let p_t = p * t + (1.0 - p) * (1.0 - t);
  return alpha_t(t, alpha) * ce * pow_nonneg(1.0 - p_t, gamma);
}
fn focal_grad(x: f32, t: f32, alpha: f32, gamma: f32) -> f32 {
  let p = sigmoid_(x);
  let ce = max(x, 0.0) - x * t + log1p_(exp(-abs(x)));
  let m = 1.0 - (p * t + (1.0 - p) * (1.0 - t));
  let dm = -p * (1.0 - p) * (2.0 * t - 1.0);
  var d = (p - t) * pow_nonneg(m, gamma);
  if (m > 0.0 && gamma != 0.0) { d += ce * gamma * pow(m, gamma - 1.0) * dm; }
  return alpha_t(t, alpha) * d;
}`;

export interface FocalLossOptions {
  /** Weight of positives (negatives get 1 - alpha); < 0 disables. Default 0.25. */
  alpha?: number;
  /** Focusing exponent. Default 2. */
  gamma?: number;
  /** Default 'none' (as torchvision). */
  reduction?: Reduction;
}

/**
 * torchvision.ops.sigmoid_focal_loss: alpha_t * CE(x, t) * (1 - p_t)^gamma. Gradient flows to the
 * logits only (targets are labels).
 */
export function sigmoidFocalLoss(logits: Tensor, targets: Tensor, opts: FocalLossOptions = {}): Tensor {
  logits = toF32(logits);
  checkSameShape('sigmoidFocalLoss', logits, targets, 'logits', 'targets');
  const sc = [opts.alpha ?? 0.25, opts.gamma ?? 2];
  const loss = lossMap('focal_loss', FOCAL, 'focal_loss(a, b, s0, s1)', [logits, targets], logits.shape, sc);
  record(loss, 'sigmoidFocalLoss', [logits], (g) => [lossMap('focal_loss_bw', FOCAL, 'c * focal_grad(a, b, s0, s1)', [logits, targets, g], logits.shape, sc)]);
  return reduce(loss, opts.reduction ?? 'none', 'sigmoidFocalLoss');
}

// ---- binary cross-entropy with logits -------------------------------------------------------------

const BCE = /* wgsl */ `
// PyTorch: (1 - t) x + lw (log1p(exp(-|x|)) + max(-x, 0)), lw = (pos_weight - 1) t + 1; times weight.
fn bce_logits(x: f32, t: f32, w: f32, pw: f32) -> f32 {
  let lw = (pw - 1.0) * t + 1.0;
  return w * ((1.0 - t) * x + lw * (log1p_(exp(-abs(x))) + max(-x, 0.0)));
}
fn bce_logits_grad(x: f32, t: f32, w: f32, pw: f32) -> f32 {
  let lw = (pw - 1.0) * t + 1.0;
  return w * ((1.0 - t) - lw * sigmoid_(-x));
}`;

export interface BceOptions {
  /** Per-element weight, broadcast against the input. */
  weight?: Tensor;
  /** Weight of positive examples, broadcast against the input (per class: last dim). */
  posWeight?: Tensor;
  /** Default 'mean' (as PyTorch). */
  reduction?: Reduction;
}

/** F.binary_cross_entropy_with_logits. Gradient flows to the logits (targets are labels). */
export function binaryCrossEntropyWithLogits(logits: Tensor, targets: Tensor, opts: BceOptions = {}): Tensor {
  logits = toF32(logits);
  const op = 'binaryCrossEntropyWithLogits';
  checkSameShape(op, logits, targets, 'logits', 'targets');
  for (const [n, t] of [['weight', opts.weight], ['posWeight', opts.posWeight]] as const) {
    const shape = t ? broadcastShapes(t.shape, logits.shape) : logits.shape;
    if (shape.length !== logits.ndim || shape.some((d, i) => d !== logits.shape[i])) {
      throw new Error(`${op}: ${n} [${t!.shape}] does not broadcast to the input [${logits.shape}]`);
    }
  }
  const w = opts.weight ?? full([], 1);
  const pw = opts.posWeight ?? full([], 1);
  const loss = lossMap('bce_logits', BCE, 'bce_logits(a, b, c, d)', [logits, targets, w, pw], logits.shape);
  record(loss, op, [logits], (g) => [lossMap('bce_logits_bw', BCE, 'e * bce_logits_grad(a, b, c, d)', [logits, targets, w, pw, g], logits.shape)]);
  return reduce(loss, opts.reduction ?? 'mean', op);
}

// ---- smooth L1 and MSE ------------------------------------------------------------------------------

const SMOOTH_L1 = /* wgsl */ `
fn smooth_l1(d: f32, beta: f32) -> f32 {
  let ad = abs(d);
  return select(ad - 0.5 * beta, 0.5 * d * d / beta, ad < beta);
}
fn smooth_l1_grad(d: f32, beta: f32) -> f32 { return select(sign(d), d / beta, abs(d) < beta); }`;

/** F.smooth_l1_loss(input, target, beta): 0.5 d^2 / beta where |d| < beta, else |d| - beta/2. */
export function smoothL1Loss(input: Tensor, target: Tensor, opts: { beta?: number; reduction?: Reduction } = {}): Tensor {
  input = toF32(input);
  target = toF32(target);
  const op = 'smoothL1Loss';
  checkSameShape(op, input, target, 'input', 'target');
  const beta = opts.beta ?? 1;
  if (!(beta >= 0)) throw new Error(`${op}: beta must be >= 0, got ${beta}`);
  const loss = lossMap('smooth_l1', SMOOTH_L1, 'smooth_l1(a - b, s0)', [input, target], input.shape, [beta]);
  record(loss, op, [input, target], (g) => {
    const d = lossMap('smooth_l1_bw', SMOOTH_L1, 'c * smooth_l1_grad(a - b, s0)', [input, target, g], input.shape, [beta]);
    return [input.requiresGrad ? d : null, target.requiresGrad ? neg(d) : null];
  });
  return reduce(loss, opts.reduction ?? 'mean', op);
}

/** F.mse_loss. */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  input = toF32(input);
  target = toF32(target);
  const op = 'mseLoss';
  checkSameShape(op, input, target, 'input', 'target');
  const loss = mapRaw('mse', '(x - y) * (x - y)', [input, target], input.shape, 'f32', 'f32');
  record(loss, op, [input, target], (g) => {
    const d = mapRaw('mse_bw', '2.0 * (x - y) * z', [input, target, g], input.shape, 'f32', 'f32');
    return [input.requiresGrad ? d : null, target.requiresGrad ? neg(d) : null];
  });
  return reduce(loss, opts.reduction ?? 'mean', op);
}

// ---- IoU losses on boxes ----------------------------------------------------------------------------

function denseRows(op: string, name: string, t: Tensor): Tensor {
  if (t.ndim !== 2 || t.shape[1] !== 4) throw new Error(`${op}: ${name} must have shape [N, 4], got [${t.shape}]`);
  if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
  if (t.isContiguous() && t.offset === 0) return t;
  return mapRaw('copy', 'x', [t], t.shape, 'f32', 'f32');
}

export interface IouLossOptions {
  /** 'iou' (-log IoU), 'linear_iou' (1 - IoU) or 'giou' (1 - GIoU). Default 'iou'. */
  type?: IouLossType;
  /** Per-sample weights [N] (CenterMask2 weights by the centerness target). */
  weight?: Tensor;
  /** Default 'sum' (CenterMask2's IOULoss returns the weighted sum). */
  reduction?: Reduction;
}

/**
 * CenterMask2 IOULoss on stride-normalised (l, t, r, b) distances [N, 4]: IoU = (I + 1) / (U + 1),
 * GIoU = IoU - (C - U) / C; the per-sample loss times the optional weight, then reduced.
 * Gradient flows to `pred` only.
 */
export function iouLoss(pred: Tensor, target: Tensor, opts: IouLossOptions = {}): Tensor {
  pred = toF32(pred);
  target = toF32(target);
  const op = 'iouLoss';
  const type = opts.type ?? 'iou';
  if (!['iou', 'linear_iou', 'giou'].includes(type)) throw new Error(`${op}: type must be 'iou', 'linear_iou' or 'giou', got '${type}'`);
  checkSameShape(op, pred, target, 'pred', 'target');
  const p = denseRows(op, 'pred', pred);
  const t = denseRows(op, 'target', target);
  const rows = p.shape[0]!;
  if (opts.weight && (opts.weight.ndim !== 1 || opts.weight.shape[0] !== rows)) throw new Error(`${op}: weight must have shape [${rows}], got [${opts.weight.shape}]`);
  const perRow = empty([rows]);
  if (rows > 0) launchIouLtrb(p.buffer, t.buffer, perRow.buffer, rows, type);
  record(perRow, op, [pred], (g) => {
    const gc = g.isContiguous() && g.offset === 0 ? g : mapRaw('copy', 'x', [g], g.shape, 'f32', 'f32');
    const grad = empty([rows, 4]);
    if (rows > 0) launchIouLtrb(p.buffer, t.buffer, grad.buffer, rows, type, gc.buffer);
    if (gc !== g) gc.dispose();
    return [grad];
  });
  const weighted = opts.weight ? mul(perRow, opts.weight) : perRow;
  return reduce(weighted, opts.reduction ?? 'sum', op);
}

/** torchvision.ops.generalized_box_iou_loss on (x1, y1, x2, y2) boxes [N, 4]; gradient to boxes1. */
export function generalizedBoxIouLoss(boxes1: Tensor, boxes2: Tensor, opts: { reduction?: Reduction; eps?: number } = {}): Tensor {
  boxes1 = toF32(boxes1);
  boxes2 = toF32(boxes2);
  const op = 'generalizedBoxIouLoss';
  checkSameShape(op, boxes1, boxes2, 'boxes1', 'boxes2');
  const a = denseRows(op, 'boxes1', boxes1);
  const b = denseRows(op, 'boxes2', boxes2);
  const rows = a.shape[0]!;
  const eps = opts.eps ?? 1e-7;
  const perRow = empty([rows]);
  if (rows > 0) launchGiouBox(a.buffer, b.buffer, perRow.buffer, rows, eps);
  record(perRow, op, [boxes1], (g) => {
    const gc = g.isContiguous() && g.offset === 0 ? g : mapRaw('copy', 'x', [g], g.shape, 'f32', 'f32');
    const grad = empty([rows, 4]);
    if (rows > 0) launchGiouBox(a.buffer, b.buffer, grad.buffer, rows, eps, gc.buffer);
    if (gc !== g) gc.dispose();
    return [grad];
  });
  return reduce(perRow, opts.reduction ?? 'none', op);
}
