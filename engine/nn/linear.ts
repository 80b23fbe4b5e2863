// Linear layer y = x·Wᵀ + b with PyTorch's default initialisation: W ~ kaiming_uniform(a=√5),
// i.e. U(-1/√in, 1/√in), and b ~ U(-1/√in, 1/√in). The forward is the fused matmul-with-bias
// kernel of engine/ops/matmul.ts (autograd included).
import { empty, type Tensor } from '../tensor';
import { linear, type Activation } from '../ops/matmul';
import { fanInAndFanOut, kaimingUniform_, nextSeed, uniform_ } from './init';
import { Module } from './module';

export interface LinearOptions {
  bias?: boolean;
  /** Seed of the initialisation (else drawn from the generator `manualSeed()` resets). */
  seed?: number;
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    for (const [what, n] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const) {
      if (!Number.isInteger(n) || n <= 0) throw new Error(`Linear: ${what} must be a positive integer, got ${n}`);
    }
    const seed = opts.seed ?? nextSeed();
    this.weight = this.registerParameter('weight', empty([outFeatures, inFeatures]));
    kaimingUniform_(this.weight, { a: Math.sqrt(5), seed });
    this.bias = this.registerParameter('bias', opts.bias === false ? null : empty([outFeatures]));
    if (this.bias) {
      const bound = 1 / Math.sqrt(fanInAndFanOut(this.weight.shape).fanIn);
      uniform_(this.bias, -bound, bound, (seed + 0x9e3779b9) >>> 0);
    }
  }

  /** x [..., inFeatures] -> [..., outFeatures]; `act` fuses a ReLU into the same kernel. */
  forward(x: Tensor, act: Activation = 'none'): Tensor {
    return linear(x, this.weight, this.bias, act);
  }
}
