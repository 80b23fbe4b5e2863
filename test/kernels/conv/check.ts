// Shared by the per-kernel conv tests: random data for a case, odd (non-contiguous, offset) views,
// and one check of forward, dgrad, wgrad and the backward pair of a kernel against the float64
// reference (kernels/conv/reference.ts).
import { fromArray, narrow, permute, type Tensor } from '../../../engine';
import { f16ToF32, f32ToF16 } from '../../../runtime/dtype';
import { conv2dBackwardRaw, conv2dDgradRaw, conv2dForwardRaw, conv2dWgradRaw } from '../../../engine/ops/conv';
import { type ConvAlgo } from '../../../kernels/conv/chooser';
import { convGeometry } from '../../../kernels/conv/geometry';
import { conv2dGradRef, conv2dRef, convOutShape, type ConvCase, type Shape4 } from '../../../kernels/conv/reference';
import { Rng, expectClose } from '../../util';

/** Random inputs of a case (float32 values held as float64). */
export function caseData(c: ConvCase, seed: number) {
  const rng = new Rng(seed);
  const n = (s: readonly number[]) => s.reduce((a, b) => a * b);
  const ys = convOutShape(c.xs, c.ws, c.o);
  const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));
  return { xh: f32(rng.uniformArray(n(c.xs), -1, 1)), wh: f32(rng.uniformArray(n(c.ws), -1, 1)), bh: f32(rng.uniformArray(c.ws[0], -1, 1)), gh: f32(rng.uniformArray(n(ys), -1, 1)), ys };
}

/** The same values as a view that is not a plain contiguous tensor at offset 0. */
export function oddView(h: Float64Array, s: Shape4, how: 'permuted' | 'offset', dtype: 'f32' | 'f16' = 'f32'): Tensor {
  if (how === 'offset') {
    // One extra leading image in front: the view starts at element C·H·W (not 4-aligned for odd sizes).
    const per = s[1] * s[2] * s[3];
    const big = new Float64Array(per + h.length);
    big.set(h, per);
    for (let i = 0; i < per; i++) big[i] = 1e3; // poison: must never be read
    return narrow(fromArray(big, [s[0] + 1, s[1], s[2], s[3]], dtype), 0, 1, s[0]);
  }
  // Stored as [N, H, C, W], viewed as [N, C, H, W].
  const [N, C, H, W] = s;
  const t = new Float64Array(h.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) t[((n * H + y) * C + c) * W + x] = h[((n * C + c) * H + y) * W + x]!;
  return permute(fromArray(t, [N, H, C, W], dtype), [0, 2, 1, 3]);
}

export interface CheckOptions {
  /** Inputs x and dy as odd views. */
  view?: 'permuted' | 'offset';
  /** Also the forward without bias and ReLU. */
  plainForward?: boolean;
  /** f16 storage: x, w and dy rounded to f16 (the reference sees the rounded values), y and dx
   *  f16, dw f32; checked at f16 tolerance. */
  f16?: boolean;
}

const roundF16 = (h: Float64Array) => h.map((v) => f16ToF32(f32ToF16(v)));

/** y = relu(conv + b), dx, dw and the backward pair (dx and dw recorded together, as autograd
 *  does: one fused dispatch where the chooser fuses) of `algo` against the float64 reference. */
export async function checkKernel(c: ConvCase, seed: number, algo: ConvAlgo, opts: CheckOptions = {}): Promise<void> {
  const data = caseData(c, seed);
  const { bh, ys } = data;
  const [xh, wh, gh] = opts.f16 ? [roundF16(data.xh), roundF16(data.wh), roundF16(data.gh)] : [data.xh, data.wh, data.gh];
  const geo = convGeometry('test', c.xs, c.ws, c.o);
  const dt = opts.f16 ? 'f16' : 'f32';
  const x = opts.view ? oddView(xh, c.xs, opts.view, dt) : fromArray(xh, c.xs, dt);
  const w = fromArray(wh, c.ws, dt);
  const b = fromArray(bh, [c.ws[0]]);
  const dy = opts.view ? oddView(gh, ys, opts.view, dt) : fromArray(gh, ys, dt);
  const yRef = conv2dRef(xh, c.xs, wh, c.ws, bh, c.o).map((v) => Math.max(v, 0));
  const ref = conv2dGradRef(xh, c.xs, wh, c.ws, gh, c.o);
  const K = c.ws[1] * c.ws[2] * c.ws[3];
  const nhw = ys[0] * ys[2] * ys[3];
  const what = (t: string) => `${c.name} ${t} (seed ${seed}, algo ${algo}${opts.view ? `, ${opts.view} inputs` : ''}${opts.f16 ? ', f16' : ''})`;
  const dtypeOk = (t: Tensor, want: string) => {
    if (t.dtype !== want) throw new Error(`${what('dtype')}: ${t.dtype}, expected ${want}`);
    return t;
  };
  const act = opts.f16 ? 'f16' : 'f32';
  dtypeOk(conv2dForwardRaw(geo, x, w, null, false, algo), act);
  dtypeOk(conv2dDgradRaw(geo, dy, w, algo), act);
  dtypeOk(conv2dWgradRaw(geo, dy, x, algo), 'f32');
  // f16 outputs (y, dx) add one f16 rounding (relative 2^-11) to the f32 accumulation's error.
  const tol = opts.f16 ? { atol: 2e-6 * K + 1e-3, rtol: 1e-3 } : { atol: 2e-6 * K + 1e-5, rtol: 1e-4 };
  const gwTol = { atol: 2e-6 * nhw + 1e-5, rtol: 1e-4 };
  expectClose(await conv2dForwardRaw(geo, x, w, b, true, algo).data(), yRef, { ...tol, what: what('y = relu(conv + b)'), shape: ys });
  if (opts.plainForward) {
    expectClose(await conv2dForwardRaw(geo, x, w, null, false, algo).data(), conv2dRef(xh, c.xs, wh, c.ws, null, c.o), { ...tol, what: what('y = conv'), shape: ys });
  }
  expectClose(await conv2dDgradRaw(geo, dy, w, algo).data(), ref.gx, { ...tol, what: what('grad x'), shape: c.xs });
  expectClose(await conv2dWgradRaw(geo, dy, x, algo).data(), ref.gw, { ...gwTol, what: what('grad w'), shape: c.ws });
  const [gx, gw] = conv2dBackwardRaw(geo, dy, x, w, true, true, algo);
  expectClose(await gx!.data(), ref.gx, { ...tol, what: what('grad x (backward pair)'), shape: c.xs });
  expectClose(await gw!.data(), ref.gw, { ...gwTol, what: what('grad w (backward pair)'), shape: c.ws });
}

