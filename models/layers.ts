// Parameterised building blocks with PyTorch/Detectron2 parameter names (`weight`, `bias`,
// `running_mean`, `running_var`) so that state dicts load by key. The functional ops live in
// engine/ops; these modules only own parameters and call them.
import { conv2d, type Conv2dOptions } from '../engine/ops/conv';
import { convTranspose2d } from '../engine/ops/conv-transpose';
import { conv2dFrozenBatchNorm, convBnFoldPays, isConvBnFoldEnabled } from '../engine/ops/conv-frozen-bn';
import { isAutocastEnabled } from '../engine/amp/autocast';
import { batchNorm2d, frozenBatchNorm2d, groupNorm } from '../engine/ops/norm';
import { mapRaw, relu } from '../engine/ops/elementwise';
import { empty, full, type Tensor } from '../engine/tensor';
import { Module } from '../engine/nn/module';
import { rt } from '../runtime/runtime';
import { fanInAndFanOut, kaimingUniform_, nextSeed, uniform_ } from '../engine/nn/init';

type Pair = number | [number, number];

export interface Conv2dModuleOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  seed?: number;
}

/** nn.Conv2d with PyTorch's default init (kaiming_uniform a=√5; bias U(±1/√fan_in)). */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly opts: Conv2dOptions;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: Pair,
    o: Conv2dModuleOptions = {},
  ) {
    super();
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    const groups = o.groups ?? 1;
    if (inChannels % groups || outChannels % groups) throw new Error(`Conv2d: channels ${inChannels}->${outChannels} not divisible by groups ${groups}`);
    const seed = o.seed ?? nextSeed();
    this.weight = this.registerParameter('weight', empty([outChannels, inChannels / groups, kh, kw]));
    kaimingUniform_(this.weight, { a: Math.sqrt(5), seed });
    this.bias = this.registerParameter('bias', o.bias === false ? null : empty([outChannels]));
    if (this.bias) {
      const bound = 1 / Math.sqrt(fanInAndFanOut(this.weight.shape).fanIn);
      uniform_(this.bias, -bound, bound, (seed + 0x9e3779b9) >>> 0);
    }
    this.opts = { stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1, groups };
  }

  forward(x: Tensor, activation?: 'relu'): Tensor {
    return conv2d(x, this.weight, this.bias, { ...this.opts, activation });
  }
}

/** nn.ConvTranspose2d (weight [in, out/groups, kh, kw]). */
export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly stride = 1,
    o: { bias?: boolean; seed?: number; padding?: number } = {},
  ) {
    super();
    const seed = o.seed ?? nextSeed();
    this.weight = this.registerParameter('weight', empty([inChannels, outChannels, kernelSize, kernelSize]));
    kaimingUniform_(this.weight, { a: Math.sqrt(5), seed });
    this.bias = this.registerParameter('bias', o.bias === false ? null : empty([outChannels]));
    if (this.bias) {
      // PyTorch computes fan_in from weight.shape[1] * k * k for transposed convs.
      const bound = 1 / Math.sqrt(outChannels * kernelSize * kernelSize);
      uniform_(this.bias, -bound, bound, (seed + 0x9e3779b9) >>> 0);
    }
    this.padding = o.padding ?? 0;
  }
  private readonly padding: number;
  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

/** Detectron2's FrozenBatchNorm2d: fixed affine y = (x - mean) / sqrt(var + eps) * w + b. */
export class FrozenBatchNorm2d extends Module {
  readonly eps = 1e-5;
  constructor(readonly numFeatures: number) {
    super();
    this.registerBuffer('weight', full([numFeatures], 1));
    this.registerBuffer('bias', full([numFeatures], 0));
    this.registerBuffer('running_mean', full([numFeatures], 0));
    this.registerBuffer('running_var', full([numFeatures], 1));
  }
  forward(x: Tensor): Tensor {
    return frozenBatchNorm2d(x, this.foldParams());
  }
  /** relu(forward(x)) as one fused kernel each way (the same values; see frozenBatchNorm2d). */
  forwardRelu(x: Tensor): Tensor {
    return frozenBatchNorm2d(x, this.foldParams(), { relu: true });
  }
  /** The buffers as frozenBatchNorm2d and conv2dFrozenBatchNorm take them. */
  foldParams() {
    return {
      weight: this.getBuffer('weight')!,
      bias: this.getBuffer('bias')!,
      runningMean: this.getBuffer('running_mean')!,
      runningVar: this.getBuffer('running_var')!,
      eps: this.eps,
    };
  }
}

/** relu(norm(x)), fused into the norm's kernels where the norm has a fused variant (FrozenBN, GN). */
export function normRelu(norm: { forward(x: Tensor): Tensor }, x: Tensor): Tensor {
  return norm instanceof FrozenBatchNorm2d || norm instanceof GroupNorm ? norm.forwardRelu(x) : relu(norm.forward(x));
}

/**
 * relu(norm(conv(x))) (without ReLU when `relu` is false). A FrozenBatchNorm2d after an f32 conv is
 * folded into it (conv2dFrozenBatchNorm: one conv with the scaled weight and shifted bias, the ReLU
 * in its epilogue) where that moves fewer bytes (convBnFoldPays: the output larger than the
 * weight), unless setConvBnFold(false); other norms, f16 convs (autocast) and the deep layers of
 * small maps run the conv then the norm. Not folded in f16 because the AMP fixture's gradients moved measurably further
 * from the f32 oracle with the fold (test/models/centermask-amp.fixture.test.ts: p7's bias 1.7e-2
 * -> 1.0e-1 of max-abs) while the losses did not; until that is understood, AMP keeps its numerics.
 */
export function convNorm(conv: Conv2d, norm: { forward(x: Tensor): Tensor }, x: Tensor, relu = true): Tensor {
  const f16 = isAutocastEnabled() || x.dtype === 'f16' || conv.weight.dtype === 'f16';
  if (norm instanceof FrozenBatchNorm2d && isConvBnFoldEnabled() && !f16 && convBnFoldPays(x.shape, conv.weight.shape, conv.opts)) {
    return conv2dFrozenBatchNorm(x, conv.weight, conv.bias, norm.foldParams(), { ...conv.opts, relu });
  }
  const c = conv.forward(x);
  return relu ? normRelu(norm, c) : norm.forward(c);
}

/**
 * nn.BatchNorm2d(C) (eps 1e-5, momentum 0.1): in training mode it normalises with the batch
 * statistics and updates running_mean / running_var (unbiased variance) and num_batches_tracked;
 * in eval mode, or when frozen (a stage under FREEZE_AT), it uses the running statistics. State
 * names are PyTorch's: weight, bias, running_mean, running_var, num_batches_tracked.
 */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  /** Frozen: running statistics in training mode too, and no parameter gradients. */
  frozen = false;
  constructor(
    readonly numFeatures: number,
    readonly eps = 1e-5,
    readonly momentum = 0.1,
  ) {
    super();
    this.weight = this.registerParameter('weight', full([numFeatures], 1));
    this.bias = this.registerParameter('bias', full([numFeatures], 0));
    this.registerBuffer('running_mean', full([numFeatures], 0));
    this.registerBuffer('running_var', full([numFeatures], 1));
    this.registerBuffer('num_batches_tracked', full([], 0, 'i32'));
  }
  forward(x: Tensor): Tensor {
    const training = this.training && !this.frozen;
    if (training) {
      // Counted on the device, so that training never waits on the host for it, and in place, so
      // that state-dict tensors held across a forward stay valid (one dispatch cannot read and
      // write the same buffer: add into a temporary, then copy back).
      const n = this.getBuffer('num_batches_tracked')!;
      const next = mapRaw('bn_batches_tracked', 'x + 1', [n], [], 'i32', 'i32');
      rt().copyBuffer(next.buffer, next.offset * 4, n.buffer, n.offset * 4, 4);
      next.dispose();
    }
    return batchNorm2d(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.getBuffer('running_mean')!,
      runningVar: this.getBuffer('running_var')!,
      training,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}

/** nn.SyncBatchNorm: statistics over every device of a step; with one device it is BatchNorm2d. */
export class SyncBatchNorm extends BatchNorm2d {}

/** nn.GroupNorm(num_groups, num_channels), affine with weight 1 and bias 0 at init. */
export class GroupNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.registerParameter('weight', full([numChannels], 1));
    this.bias = this.registerParameter('bias', full([numChannels], 0));
  }
  forward(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, { weight: this.weight, bias: this.bias, eps: this.eps });
  }
  /** relu(forward(x)) with the ReLU inside the norm's kernels, forward and backward. */
  forwardRelu(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, { weight: this.weight, bias: this.bias, eps: this.eps, relu: true });
  }
}

/** A Module holding a learnable scalar `scale` (FCOS per-level regression scale). */
export class Scale extends Module {
  readonly scale: Tensor;
  constructor(init = 1) {
    super();
    this.scale = this.registerParameter('scale', full([1], init));
  }
}

/** A plain container whose children are registered under given names (ModuleList / Sequential
 *  keys such as '0', '1' or 'stem_1/conv'). */
export class Container extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.registerModule(name, m);
  }
}
