// Per-box regression losses, one thread per row of 4 coordinates, forward (per-row loss) and
// backward (d loss_i / d pred_i scaled by the upstream per-row gradient) from one WGSL function that
// returns the loss and its gradient together, so the two can never disagree.
//   * IoU family on (l, t, r, b) distances, CenterMask2/FCOS IOULoss: +1 smoothing in IoU;
//     'iou' = -log IoU, 'linear_iou' = 1 - IoU, 'giou' = 1 - GIoU.
//   * torchvision generalized_box_iou_loss on (x1, y1, x2, y2) boxes with eps.
// torch.min / torch.max split the gradient equally between tied operands; so do these kernels.
import { defineKernel, wgsl, WGSL_LINEAR_WORKGROUP } from '../define-kernel';

const WG = 256;

export type IouLossType = 'iou' | 'linear_iou' | 'giou';
const IOU_MODE: Record<IouLossType, number> = { iou: 0, linear_iou: 1, giou: 2 };

const MINMAX_GRAD = /* wgsl */ `
// d min(a, b) / d a and d max(a, b) / d a, with ties shared equally (torch.minimum/maximum).
fn dmin(a: f32, b: f32) -> f32 { return select(select(0.0, 0.5, a == b), 1.0, a < b); }
fn dmax(a: f32, b: f32) -> f32 { return select(select(0.0, 0.5, a == b), 1.0, a > b); }
struct LossGrad { loss: f32, g: vec4f }`;

const IOU_LTRB = /* wgsl */ `
${MINMAX_GRAD}
// pred, target = (l, t, r, b).
fn iou_ltrb(pr: vec4f, tg: vec4f, mode: u32) -> LossGrad {
  let wi = min(pr.x, tg.x) + min(pr.z, tg.z);
  let hi = min(pr.w, tg.w) + min(pr.y, tg.y);
  let inter = wi * hi;
  let area_p = (pr.x + pr.z) * (pr.y + pr.w);
  let area_t = (tg.x + tg.z) * (tg.y + tg.w);
  let uni = area_t + area_p - inter;
  let iou = (inter + 1.0) / (uni + 1.0);
  let gw = max(pr.x, tg.x) + max(pr.z, tg.z);
  let gh = max(pr.w, tg.w) + max(pr.y, tg.y);
  let encl = gw * gh;
  let d_inter = vec4f(dmin(pr.x, tg.x) * hi, dmin(pr.y, tg.y) * wi, dmin(pr.z, tg.z) * hi, dmin(pr.w, tg.w) * wi);
  let d_area_p = vec4f(pr.y + pr.w, pr.x + pr.z, pr.y + pr.w, pr.x + pr.z);
  let d_uni = d_area_p - d_inter;
  let d_iou = (d_inter - iou * d_uni) / (uni + 1.0);
  var r: LossGrad;
  if (mode == 0u) {
    r.loss = -log(iou);
    r.g = -d_iou / iou;
  } else if (mode == 1u) {
    r.loss = 1.0 - iou;
    r.g = -d_iou;
  } else {
    let giou = iou - (encl - uni) / encl;
    let d_encl = vec4f(dmax(pr.x, tg.x) * gh, dmax(pr.y, tg.y) * gw, dmax(pr.z, tg.z) * gh, dmax(pr.w, tg.w) * gw);
    // giou = iou - 1 + uni / encl
    r.loss = 1.0 - giou;
    r.g = -(d_iou + (d_uni * encl - uni * d_encl) / (encl * encl));
  }
  return r;
}`;

const GIOU_BOX = /* wgsl */ `
${MINMAX_GRAD}
// b1, b2 = (x1, y1, x2, y2); gradient w.r.t. b1.
fn giou_box(b1: vec4f, b2: vec4f, eps: f32) -> LossGrad {
  let xk1 = max(b1.x, b2.x);
  let yk1 = max(b1.y, b2.y);
  let xk2 = min(b1.z, b2.z);
  let yk2 = min(b1.w, b2.w);
  let overlap = yk2 > yk1 && xk2 > xk1;
  let inter = select(0.0, (xk2 - xk1) * (yk2 - yk1), overlap);
  let uni = (b1.z - b1.x) * (b1.w - b1.y) + (b2.z - b2.x) * (b2.w - b2.y) - inter;
  let iou = inter / (uni + eps);
  let xc1 = min(b1.x, b2.x);
  let yc1 = min(b1.y, b2.y);
  let xc2 = max(b1.z, b2.z);
  let yc2 = max(b1.w, b2.w);
  let area_c = (xc2 - xc1) * (yc2 - yc1);
  var r: LossGrad;
  r.loss = 1.0 - (iou - (area_c - uni) / (area_c + eps));
  var d_inter = vec4f(0.0);
  if (overlap) {
    d_inter = vec4f(-(yk2 - yk1) * dmax(b1.x, b2.x), -(xk2 - xk1) * dmax(b1.y, b2.y), (yk2 - yk1) * dmin(b1.z, b2.z), (xk2 - xk1) * dmin(b1.w, b2.w));
  }
  let d_area1 = vec4f(-(b1.w - b1.y), -(b1.z - b1.x), b1.w - b1.y, b1.z - b1.x);
  let d_uni = d_area1 - d_inter;
  let d_iou = d_inter / (uni + eps) - inter * d_uni / ((uni + eps) * (uni + eps));
  let d_c = vec4f(-(yc2 - yc1) * dmin(b1.x, b2.x), -(xc2 - xc1) * dmin(b1.y, b2.y), (yc2 - yc1) * dmax(b1.z, b2.z), (xc2 - xc1) * dmax(b1.w, b2.w));
  let d_term = ((d_c - d_uni) * (area_c + eps) - (area_c - uni) * d_c) / ((area_c + eps) * (area_c + eps));
  r.g = -(d_iou - d_term);
  return r;
}`;

type LossKind = 'iou_ltrb' | 'giou_box';
const HELPERS: Record<LossKind, string> = { iou_ltrb: IOU_LTRB, giou_box: GIOU_BOX };
const CALL: Record<LossKind, string> = { iou_ltrb: 'iou_ltrb(a[i], b[i], p.mode)', giou_box: 'giou_box(a[i], b[i], p.eps)' };

/** Forward writes the per-row loss; backward the per-row gradient scaled by gout. */
const rowKernel = defineKernel({
  name: 'losses',
  variants: { kind: ['iou_ltrb', 'giou_box'], backward: [false, true] },
  bindings: {
    a: { type: 'vec4f', access: 'read' },
    b: { type: 'vec4f', access: 'read' },
    gout: { type: 'f32', access: 'read', when: (v) => v.backward },
    grad: { type: 'vec4f', access: 'rw', when: (v) => v.backward },
    loss: { type: 'f32', access: 'rw', when: (v) => !v.backward },
  },
  params: { rows: 'u32', mode: 'u32', eps: 'f32' },
  code: ({ kind, backward }) => wgsl`
${HELPERS[kind]}
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.rows) { return; }
  let r = ${CALL[kind]};
#if ${backward}
  grad[i] = gout[i] * r.g;
#else
  loss[i] = r.loss;
#endif
}`,
});

/** Buffers are dense [rows, 4] from element 0; `gradOut` [rows]; `out` [rows] or [rows, 4]. */
export function launchIouLtrb(pred: GPUBuffer, target: GPUBuffer, out: GPUBuffer, rows: number, type: IouLossType, gradOut?: GPUBuffer): void {
  const params = { rows, mode: IOU_MODE[type], eps: 0 };
  if (gradOut) rowKernel.dispatch({ kind: 'iou_ltrb', backward: true }, { a: pred, b: target, gout: gradOut, grad: out }, params, Math.ceil(rows / WG));
  else rowKernel.dispatch({ kind: 'iou_ltrb', backward: false }, { a: pred, b: target, loss: out }, params, Math.ceil(rows / WG));
}

export function launchGiouBox(boxes1: GPUBuffer, boxes2: GPUBuffer, out: GPUBuffer, rows: number, eps: number, gradOut?: GPUBuffer): void {
  const params = { rows, mode: 0, eps };
  if (gradOut) rowKernel.dispatch({ kind: 'giou_box', backward: true }, { a: boxes1, b: boxes2, gout: gradOut, grad: out }, params, Math.ceil(rows / WG));
  else rowKernel.dispatch({ kind: 'giou_box', backward: false }, { a: boxes1, b: boxes2, loss: out }, params, Math.ceil(rows / WG));
}
