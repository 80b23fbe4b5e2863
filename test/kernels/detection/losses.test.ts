// Losses against float64 references (forward and backward; the reference gradients checked by
// finite differences) and against PyTorch/torchvision fixtures.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  backward,
  binaryCrossEntropyWithLogits,
  fromArray,
  generalizedBoxIouLoss,
  init,
  iouLoss,
  mseLoss,
  sigmoidFocalLoss,
  slice,
  smoothL1Loss,
  type Tensor,
  transpose,
} from '../../../engine';
import { expectClose, numericGrad, Rng, testSeed } from '../../util';

beforeAll(async () => {
  await init();
});

const sig = (x: number) => 1 / (1 + Math.exp(-x));

function refFocal(x: Float64Array, t: Float64Array, alpha: number, gamma: number): Float64Array {
  return x.map((v, i) => {
    const p = sig(v);
    const ce = Math.max(v, 0) - v * t[i]! + Math.log1p(Math.exp(-Math.abs(v)));
    const pt = p * t[i]! + (1 - p) * (1 - t[i]!);
    const at = alpha >= 0 ? alpha * t[i]! + (1 - alpha) * (1 - t[i]!) : 1;
    return at * ce * (1 - pt) ** gamma;
  });
}

function refBce(x: Float64Array, t: Float64Array, w: (i: number) => number, pw: (i: number) => number): Float64Array {
  return x.map((v, i) => w(i) * ((1 - t[i]!) * v + ((pw(i) - 1) * t[i]! + 1) * (Math.log1p(Math.exp(-Math.abs(v))) + Math.max(-v, 0))));
}

/** CenterMask2 IOULoss per sample on (l, t, r, b). */
function refIouLtrb(p: Float64Array, t: Float64Array, kind: string): Float64Array {
  const n = p.length / 4;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const [pl, pt, pr, pb] = p.subarray(4 * i, 4 * i + 4);
    const [tl, tt, tr, tb] = t.subarray(4 * i, 4 * i + 4);
    const inter = (Math.min(pl!, tl!) + Math.min(pr!, tr!)) * (Math.min(pb!, tb!) + Math.min(pt!, tt!));
    const uni = (tl! + tr!) * (tt! + tb!) + (pl! + pr!) * (pt! + pb!) - inter;
    const iou = (inter + 1) / (uni + 1);
    const encl = (Math.max(pl!, tl!) + Math.max(pr!, tr!)) * (Math.max(pb!, tb!) + Math.max(pt!, tt!));
    out[i] = kind === 'iou' ? -Math.log(iou) : kind === 'linear_iou' ? 1 - iou : 1 - (iou - (encl - uni) / encl);
  }
  return out;
}

function refGiouBox(a: Float64Array, b: Float64Array, eps = 1e-7): Float64Array {
  const n = a.length / 4;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const [x1, y1, x2, y2] = a.subarray(4 * i, 4 * i + 4) as unknown as number[];
    const [u1, v1, u2, v2] = b.subarray(4 * i, 4 * i + 4) as unknown as number[];
    const xk1 = Math.max(x1!, u1!), yk1 = Math.max(y1!, v1!), xk2 = Math.min(x2!, u2!), yk2 = Math.min(y2!, v2!);
    const inter = yk2 > yk1 && xk2 > xk1 ? (xk2 - xk1) * (yk2 - yk1) : 0;
    const uni = (x2! - x1!) * (y2! - y1!) + (u2! - u1!) * (v2! - v1!) - inter;
    const c = (Math.max(x2!, u2!) - Math.min(x1!, u1!)) * (Math.max(y2!, v2!) - Math.min(y1!, v1!));
    out[i] = 1 - (inter / (uni + eps) - (c - uni) / (c + eps));
  }
  return out;
}

const dot = (a: Float64Array, g: Float64Array) => a.reduce((s, v, i) => s + v * g[i]!, 0);
const f32 = (a: ArrayLike<number>, shape: number[]) => fromArray(Float32Array.from(a), shape);
function leaf(a: ArrayLike<number>, shape: number[]): Tensor {
  const t = f32(a, shape);
  t.requiresGrad = true;
  return t;
}
/** Round to f32 so the reference sees exactly the GPU's inputs. */
const r32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));

describe('elementwise losses vs float64 reference', () => {
  it('sigmoid focal loss (none/sum/mean), transposed input', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const [n, k] = [9, 7];
    const x = r32(rng.uniformArray(n * k, -6, 6));
    const t = Float64Array.from({ length: n * k }, () => (rng.next() < 0.3 ? 1 : 0));
    const go = rng.uniformArray(n * k, -1, 1);
    const fd = numericGrad((xx) => dot(refFocal(xx, t, 0.25, 2), go), Float64Array.from(x));
    // Stored as [k, n], used transposed: a non-contiguous [n, k] input.
    const xt = new Float32Array(n * k);
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) xt[j * n + i] = x[i * k + j]!;
    const X = leaf(xt, [k, n]);
    const loss = sigmoidFocalLoss(transpose(X, 0, 1), f32(t, [n, k]));
    expectClose(await loss.data(), refFocal(x, t, 0.25, 2), { atol: 1e-6, rtol: 1e-4, what: `focal none (seed ${seed})` });
    backward(loss, f32(go, [n, k]));
    const g = await X.grad!.data();
    const gT = new Float64Array(n * k);
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) gT[i * k + j] = g[j * n + i]!;
    expectClose(gT, fd, { atol: 1e-5, rtol: 1e-3, what: `focal grad vs finite differences (seed ${seed})` });
    const X2 = leaf(x, [n, k]);
    const s = sigmoidFocalLoss(X2, f32(t, [n, k]), { reduction: 'mean', gamma: 1.5, alpha: -1 });
    const ref = refFocal(x, t, -1, 1.5);
    expectClose([await s.item()], [ref.reduce((a, v) => a + v, 0) / ref.length], { atol: 1e-6, rtol: 1e-4, what: 'focal mean' });
  });

  it('BCE with logits: weight, pos_weight, sum; smooth L1 and MSE with target gradients', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const [n, k] = [11, 3];
    const x = r32(rng.uniformArray(n * k, -5, 5));
    const t = r32(rng.uniformArray(n * k, 0, 1));
    const w = r32(rng.uniformArray(n, 0, 2));
    const pw = r32(rng.uniformArray(k, 0.5, 3));
    const wf = (i: number) => w[Math.floor(i / k)]!;
    const pwf = (i: number) => pw[i % k]!;
    const X = leaf(x, [n, k]);
    const loss = binaryCrossEntropyWithLogits(X, f32(t, [n, k]), { weight: f32(w, [n, 1]), posWeight: f32(pw, [k]), reduction: 'sum' });
    const ref = (xx: Float64Array) => refBce(xx, t, wf, pwf).reduce((a, v) => a + v, 0);
    expectClose([await loss.item()], [ref(x)], { atol: 1e-5, rtol: 1e-5, what: `bce sum (seed ${seed})` });
    backward(loss);
    expectClose(await X.grad!.data(), numericGrad(ref, Float64Array.from(x)), { atol: 1e-5, rtol: 1e-4, what: `bce grad (seed ${seed})` });

    const a = r32(rng.uniformArray(37, -2, 2));
    const b = r32(rng.uniformArray(37, -2, 2));
    for (const beta of [0.7, 0]) {
      const A = leaf(a, [37]);
      const B = leaf(b, [37]);
      const sl = (aa: Float64Array) => aa.reduce((s, v, i) => {
        const d = Math.abs(v - b[i]!);
        return s + (d < beta ? (0.5 * d * d) / beta : d - 0.5 * beta);
      }, 0) / 37;
      const L = smoothL1Loss(A, B, { beta });
      expectClose([await L.item()], [sl(a)], { atol: 1e-6, rtol: 1e-5, what: `smooth L1 beta ${beta}` });
      backward(L);
      const fd = numericGrad(sl, Float64Array.from(a), 1e-7);
      expectClose(await A.grad!.data(), fd, { atol: 1e-4, rtol: 1e-3, what: `smooth L1 grad beta ${beta} (seed ${seed})` });
      expectClose(await B.grad!.data(), fd.map((v) => -v), { atol: 1e-4, rtol: 1e-3, what: `smooth L1 target grad beta ${beta}` });
    }
    const A = leaf(a, [37]);
    const L = mseLoss(slice(A, 0, 0, 37), f32(b, [37]), { reduction: 'sum' });
    const ms = (aa: Float64Array) => aa.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);
    expectClose([await L.item()], [ms(a)], { atol: 1e-5, rtol: 1e-5, what: 'mse sum' });
    backward(L);
    expectClose(await A.grad!.data(), numericGrad(ms, Float64Array.from(a)), { atol: 1e-4, rtol: 1e-4, what: `mse grad (seed ${seed})` });
  });

  it('rejects mismatched shapes', () => {
    expect(() => mseLoss(f32([1, 2], [2]), f32([1, 2, 3], [3]))).toThrow(/same shape/);
    expect(() => iouLoss(f32([1, 2, 3], [1, 3]), f32([1, 2, 3], [1, 3]))).toThrow(/\[N, 4\]/);
  });
});

describe('box regression losses vs float64 reference', () => {
  for (const kind of ['iou', 'linear_iou', 'giou'] as const) {
    it(`CenterMask2 IOULoss '${kind}' on (l, t, r, b), weighted sum`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const n = 13;
      const p = r32(rng.uniformArray(4 * n, 0.1, 5));
      const t = r32(rng.uniformArray(4 * n, 0.1, 5));
      const w = r32(rng.uniformArray(n, 0, 1));
      const ref = (pp: Float64Array) => dot(refIouLtrb(pp, t, kind), w);
      const P = leaf(p, [n, 4]);
      const L = iouLoss(P, f32(t, [n, 4]), { type: kind, weight: f32(w, [n]) });
      expectClose([await L.item()], [ref(p)], { atol: 1e-5, rtol: 1e-5, what: `iou ${kind} (seed ${seed})` });
      backward(L);
      expectClose(await P.grad!.data(), numericGrad(ref, Float64Array.from(p)), { atol: 1e-4, rtol: 1e-3, what: `iou ${kind} grad (seed ${seed})` });
    });
  }

  it('torchvision generalized_box_iou_loss on boxes, per sample', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const n = 17;
    const mk = () => {
      const a = new Float64Array(4 * n);
      for (let i = 0; i < n; i++) {
        const x = rng.uniform(0, 10), y = rng.uniform(0, 10);
        a.set([x, y, x + rng.uniform(0.5, 6), y + rng.uniform(0.5, 6)], 4 * i);
      }
      return r32(a);
    };
    const a = mk();
    const b = mk();
    const go = rng.uniformArray(n, 0, 1);
    const A = leaf(a, [n, 4]);
    const L = generalizedBoxIouLoss(A, f32(b, [n, 4]));
    expectClose(await L.data(), refGiouBox(a, b), { atol: 1e-6, rtol: 1e-4, what: `giou box (seed ${seed})` });
    backward(L, f32(go, [n]));
    const fd = numericGrad((aa) => dot(refGiouBox(aa, b), go), Float64Array.from(a));
    expectClose(await A.grad!.data(), fd, { atol: 1e-4, rtol: 1e-3, what: `giou box grad (seed ${seed})` });
  });
});

describe('PyTorch / torchvision parity (fixtures)', () => {
  const fx = JSON.parse(readFileSync(new URL('../../fixtures/detection/losses.json', import.meta.url), 'utf8'));
  const tol = { atol: 1e-6, rtol: 1e-4 };

  it('sigmoid_focal_loss sum and mean, forward and backward', async () => {
    const c = fx.focal;
    for (const red of ['sum', 'mean'] as const) {
      const X = leaf(c.logits, c.shape);
      const L = sigmoidFocalLoss(X, f32(c.targets, c.shape), { reduction: red });
      expectClose([await L.item()], [c[red].loss], { ...tol, what: `focal ${red}` });
      backward(L);
      expectClose(await X.grad!.data(), c[red].grad, { ...tol, what: `focal ${red} grad` });
    }
  });

  it('generalized_box_iou_loss forward and backward', async () => {
    const c = fx.giou_box;
    const n = c.boxes1.length / 4;
    const A = leaf(c.boxes1, [n, 4]);
    const L = generalizedBoxIouLoss(A, f32(c.boxes2, [n, 4]));
    expectClose(await L.data(), c.loss, { ...tol, what: 'giou box' });
    backward(L, f32(c.grad_output, [n]));
    expectClose(await A.grad!.data(), c.grad_boxes1, { ...tol, what: 'giou box grad' });
  });

  it('CenterMask2 IOULoss (torch autograd), ties included', async () => {
    const c = fx.iou_ltrb;
    const n = c.pred.length / 4;
    for (const kind of ['iou', 'linear_iou', 'giou'] as const) {
      const P = leaf(c.pred, [n, 4]);
      const L = iouLoss(P, f32(c.target, [n, 4]), { type: kind, weight: f32(c.weight, [n]) });
      expectClose([await L.item()], [c[kind].loss], { ...tol, what: `iou ${kind}` });
      backward(L);
      expectClose(await P.grad!.data(), c[kind].grad, { ...tol, what: `iou ${kind} grad` });
    }
  });

  it('binary_cross_entropy_with_logits (weight, pos_weight), smooth_l1 and mse', async () => {
    const b = fx.bce;
    const X = leaf(b.x, b.shape);
    const L = binaryCrossEntropyWithLogits(X, f32(b.target, b.shape), { weight: f32(b.weight, [b.shape[0], 1]), posWeight: f32(b.pos_weight, [b.shape[1]]) });
    expectClose([await L.item()], [b.loss], { ...tol, what: 'bce' });
    backward(L);
    expectClose(await X.grad!.data(), b.grad, { ...tol, what: 'bce grad' });
    const s = fx.smooth_l1;
    const A = leaf(s.input, [s.input.length]);
    const SL = smoothL1Loss(A, f32(s.target, [s.target.length]), { beta: s.beta, reduction: 'sum' });
    expectClose([await SL.item()], [s.loss], { ...tol, what: 'smooth_l1' });
    backward(SL);
    expectClose(await A.grad!.data(), s.grad, { ...tol, what: 'smooth_l1 grad' });
    const m = fx.mse;
    const M = leaf(m.input, [m.input.length]);
    const ML = mseLoss(M, f32(m.target, [m.target.length]));
    expectClose([await ML.item()], [m.loss], { ...tol, what: 'mse' });
    backward(ML);
    expectClose(await M.grad!.data(), m.grad, { ...tol, what: 'mse grad' });
  });
});
