// Parameter initialisers, following torch.nn.init: fan computation, gains, kaiming (MSRA) and
// xavier in uniform and normal forms, plain normal/uniform/constant. Random values come from the
// counter-based GPU RNG of the elementwise kernel, so a (seed, shape) pair gives the same values on
// any machine. Without an explicit seed, seeds are drawn from a module-level generator that
// `manualSeed()` resets: building a model after `manualSeed(n)` is reproducible.
import { Rng } from '../../runtime/rng';
import type { Tensor } from '../tensor';
import { launchMap } from '../../kernels/elementwise/map';

let seedSource = new Rng(0);

/** Reset the generator that supplies seeds to initialisers called without one. */
export function manualSeed(seed: number): void {
  seedSource = new Rng(seed);
}

/** The next seed from the global generator (what an initialiser without `seed` uses). */
export function nextSeed(): number {
  return seedSource.nextU32();
}

export type FanMode = 'fan_in' | 'fan_out';
export type Nonlinearity = 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** torch.nn.init._calculate_fan_in_and_fan_out: dims 0 and 1 times the receptive field size. */
export function fanInAndFanOut(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`fan in and fan out need a tensor with at least 2 dimensions, got shape [${shape}]`);
  let receptive = 1;
  for (let d = 2; d < shape.length; d++) receptive *= shape[d]!;
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

/** torch.nn.init.calculate_gain. `param` is the leaky_relu negative slope (default 0.01). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
    default:
      throw new Error(`calculateGain: unknown nonlinearity '${String(nonlinearity)}'`);
  }
}

function checkFloat(t: Tensor, what: string): void {
  if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new Error(`${what}: needs a float tensor, got ${t.dtype}`);
}

/** Fill `t` in place with uniform values in [lo, hi). */
export function uniform_(t: Tensor, lo = 0, hi = 1, seed = nextSeed()): Tensor {
  checkFloat(t, 'uniform_');
  launchMap({ name: 'init_uniform', expr: 's0 + (s1 - s0) * rand_u01(i, seed)', inputs: [], out: t, scalars: [lo, hi] }, seed);
  return t;
}

/** Fill `t` in place with normal values N(mean, std²). */
export function normal_(t: Tensor, mean = 0, std = 1, seed = nextSeed()): Tensor {
  checkFloat(t, 'normal_');
  launchMap({ name: 'init_normal', expr: 's0 + s1 * rand_normal(i, seed)', inputs: [], out: t, scalars: [mean, std] }, seed);
  return t;
}

/** Fill `t` in place with a constant. */
export function constant_(t: Tensor, value: number): Tensor {
  launchMap({ name: 'init_constant', expr: 's0', inputs: [], out: t, scalars: [value] });
  return t;
}

export const zeros_ = (t: Tensor) => constant_(t, 0);
export const ones_ = (t: Tensor) => constant_(t, 1);

export interface KaimingOptions {
  /** Negative slope of the rectifier after this layer (leaky_relu only); PyTorch's default 0. */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
  seed?: number;
}

/** The standard deviation kaiming_normal_ draws with (also the bound / √3 of kaiming_uniform_). */
export function kaimingStd(shape: readonly number[], opts: KaimingOptions = {}): number {
  const { fanIn, fanOut } = fanInAndFanOut(shape);
  const fan = (opts.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  return gain / Math.sqrt(fan);
}

/** He/MSRA uniform: U(-b, b) with b = gain·√(3 / fan). */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t.shape, opts);
  return uniform_(t, -bound, bound, opts.seed ?? nextSeed());
}

/** He/MSRA normal: N(0, (gain / √fan)²). */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t.shape, opts), opts.seed ?? nextSeed());
}

export interface XavierOptions {
  gain?: number;
  seed?: number;
}

/** Glorot uniform: U(-b, b) with b = gain·√(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, opts: XavierOptions = {}): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  const bound = (opts.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound, opts.seed ?? nextSeed());
}

/** Glorot normal: N(0, gain² · 2 / (fan_in + fan_out)). */
export function xavierNormal_(t: Tensor, opts: XavierOptions = {}): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  return normal_(t, 0, (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)), opts.seed ?? nextSeed());
}

/** Detectron2's c2_msra_fill: kaiming_normal_(fan_out, relu) weight, zero bias. */
export function c2MsraFill(weight: Tensor, bias?: Tensor | null, seed = nextSeed()): void {
  kaimingNormal_(weight, { mode: 'fan_out', nonlinearity: 'relu', seed });
  if (bias) zeros_(bias);
}

/** Detectron2's c2_xavier_fill (Caffe2 XavierFill): kaiming_uniform_(a=1) weight, zero bias. */
export function c2XavierFill(weight: Tensor, bias?: Tensor | null, seed = nextSeed()): void {
  kaimingUniform_(weight, { a: 1, seed });
  if (bias) zeros_(bias);
}
