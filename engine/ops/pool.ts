// Pooling and resampling on NCHW f32 or f16 tensors (f16 storage, computed in f32), forward and backward side by side (kernels in
// kernels/pool/pool.ts): max_pool2d (with ceil_mode, backward routed to the argmax), avg_pool2d,
// adaptive and global average pooling, nearest upsampling by integer factors, and bilinear
// interpolation with align_corners = false. All follow PyTorch's size and index rules.
import { record } from '../autograd';
import { contiguousCopy, empty, type Tensor } from '../tensor';
import { launchPool, type PlaneGeometry, type PoolKernel } from '../../kernels/pool/pool';
import { pair, type Pair } from '../../kernels/conv/geometry';

function check4d(what: string, x: Tensor): [number, number, number, number] {
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new Error(`${what}: needs an f32 or f16 tensor, got ${x.dtype}`);
  if (x.ndim !== 4) throw new Error(`${what}: input must be 4-d [N, C, H, W], got [${x.shape}]`);
  return x.shape as [number, number, number, number];
}

/** Run a pool kernel on `src` (made contiguous) into a new tensor of `outShape`. */
function run(name: PoolKernel, g: PlaneGeometry, src: Tensor, outShape: number[], extra: Tensor[] = [], extraOut: Tensor[] = []): Tensor {
  const s = src.isContiguous() ? src : contiguousCopy(src);
  const out = empty(outShape, src.dtype);
  launchPool(name, g, [s.buffer, ...extra.map((t) => t.buffer), out.buffer, ...extraOut.map((t) => t.buffer)], s.offset, out.offset, 0, src.dtype === 'f16');
  if (s !== src) s.dispose();
  return out;
}

/** PyTorch's pooling_output_shape (dilation 1). */
export function poolOutSize(n: number, k: number, s: number, p: number, ceil: boolean): number {
  let out = Math.floor((n + 2 * p - (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
  // With ceil_mode the last window must start inside the input or the left padding.
  if (ceil && (out - 1) * s >= n + p) out--;
  return out;
}

export interface Pool2dOptions {
  kernelSize: Pair;
  /** Defaults to kernelSize. */
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
}

function poolGeometry(what: string, x: Tensor, o: Pool2dOptions): { g: PlaneGeometry; shape: number[] } {
  const [N, C, H, W] = check4d(what, x);
  const [kH, kW] = pair(o.kernelSize);
  const [sH, sW] = pair(o.stride ?? o.kernelSize);
  const [pH, pW] = pair(o.padding ?? 0);
  if (kH < 1 || kW < 1 || sH < 1 || sW < 1) throw new Error(`${what}: kernel and stride must be positive, got kernel [${kH}, ${kW}], stride [${sH}, ${sW}]`);
  if (pH < 0 || pW < 0 || pH * 2 > kH || pW * 2 > kW) throw new Error(`${what}: padding [${pH}, ${pW}] must be between 0 and half the kernel [${kH}, ${kW}]`);
  const ceil = !!o.ceilMode;
  const OH = poolOutSize(H, kH, sH, pH, ceil);
  const OW = poolOutSize(W, kW, sW, pW, ceil);
  if (OH < 1 || OW < 1) throw new Error(`${what}: output size ${OH}x${OW} is empty for input ${H}x${W}`);
  return { g: { planes: N * C, H, W, OH, OW, kH, kW, sH, sW, pH, pW }, shape: [N, C, OH, OW] };
}

/** F.max_pool2d (dilation 1). The gradient goes to the first maximum of each window. */
export function maxPool2d(x: Tensor, o: Pool2dOptions): Tensor {
  const { g, shape } = poolGeometry('max_pool2d', x, o);
  const argmax = empty(shape, 'i32');
  const y = run('max_fwd', g, x, shape, [], [argmax]);
  if (!x.requiresGrad) argmax.dispose();
  return record(y, 'max_pool2d', [x], (gy) => {
    const gx = run('max_bwd', g, gy, [...x.shape], [argmax]);
    argmax.dispose();
    return [gx];
  });
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /** Count padded zeros in the divisor (PyTorch's default true). */
  countIncludePad?: boolean;
}

export function avgPool2d(x: Tensor, o: AvgPool2dOptions): Tensor {
  const { g, shape } = poolGeometry('avg_pool2d', x, o);
  g.flag = o.countIncludePad ?? true;
  const y = run('avg_fwd', g, x, shape);
  return record(y, 'avg_pool2d', [x], (gy) => [run('avg_bwd', g, gy, [...x.shape])]);
}

/** F.adaptive_avg_pool2d: output bins [floor(i·in/out), ceil((i+1)·in/out)). */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  const [N, C, H, W] = check4d('adaptive_avg_pool2d', x);
  const [OH, OW] = pair(outputSize);
  if (!(OH >= 1 && OW >= 1)) throw new Error(`adaptive_avg_pool2d: output size must be positive, got [${OH}, ${OW}]`);
  const g: PlaneGeometry = { planes: N * C, H, W, OH, OW };
  const y = run('adaptive_fwd', g, x, [N, C, OH, OW]);
  return record(y, 'adaptive_avg_pool2d', [x], (gy) => [run('adaptive_bwd', g, gy, [...x.shape])]);
}

/** Mean over H and W, keeping them as size 1: [N, C, 1, 1]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  return adaptiveAvgPool2d(x, 1);
}

/** Nearest upsampling by integer factors (FPN's ×2): y[.., oh, ow] = x[.., oh / sH, ow / sW]. */
export function upsampleNearest2d(x: Tensor, scale: Pair): Tensor {
  const [N, C, H, W] = check4d('upsample_nearest2d', x);
  const [sH, sW] = pair(scale);
  if (!(Number.isInteger(sH) && Number.isInteger(sW) && sH >= 1 && sW >= 1)) throw new Error(`upsample_nearest2d: scale must be positive integers, got [${sH}, ${sW}]`);
  const g: PlaneGeometry = { planes: N * C, H, W, OH: H * sH, OW: W * sW, kH: sH, kW: sW };
  const y = run('nearest_fwd', g, x, [N, C, H * sH, W * sW]);
  return record(y, 'upsample_nearest2d', [x], (gy) => [run('nearest_bwd', g, gy, [...x.shape])]);
}

export interface BilinearOptions {
  /** Output [OH, OW]; or give scaleFactor. */
  size?: Pair;
  /** Output = floor(input · scale); the source index then uses 1/scale, as PyTorch does. */
  scaleFactor?: number | readonly [number, number];
}

/** F.interpolate(mode='bilinear', align_corners=False). */
export function interpolateBilinear(x: Tensor, o: BilinearOptions): Tensor {
  const [N, C, H, W] = check4d('interpolate_bilinear', x);
  if ((o.size === undefined) === (o.scaleFactor === undefined)) throw new Error('interpolate_bilinear: give exactly one of size and scaleFactor');
  let OH: number, OW: number, rh: number, rw: number;
  if (o.size !== undefined) {
    [OH, OW] = pair(o.size);
    rh = H / OH;
    rw = W / OW;
  } else {
    const [fh, fw] = typeof o.scaleFactor === 'number' ? [o.scaleFactor, o.scaleFactor] : [o.scaleFactor![0], o.scaleFactor![1]];
    if (!(fh > 0 && fw > 0)) throw new Error(`interpolate_bilinear: scale factors must be positive, got [${fh}, ${fw}]`);
    OH = Math.floor(H * fh);
    OW = Math.floor(W * fw);
    rh = 1 / fh;
    rw = 1 / fw;
  }
  if (!(OH >= 1 && OW >= 1)) throw new Error(`interpolate_bilinear: output size must be positive, got [${OH}, ${OW}]`);
  const g: PlaneGeometry = { planes: N * C, H, W, OH, OW, ratioH: Math.fround(rh), ratioW: Math.fround(rw) };
  const y = run('bilinear_fwd', g, x, [N, C, OH, OW]);
  return record(y, 'interpolate_bilinear', [x], (gy) => [run('bilinear_bwd', g, gy, [...x.shape])]);
}
