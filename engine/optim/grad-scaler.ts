// GradScaler (torch.cuda.amp.GradScaler) for mixed-precision training: the loss is multiplied by a
// scale before backward so that small f16 gradients do not flush to zero; the gradients are
// unscaled before clipping and the update; a step whose gradients hold inf or NaN is skipped and
// the scale halves; after `growthInterval` clean steps in a row it doubles. Everything runs on the
// GPU (kernels/optim/grad-scaler.ts): the scale, the growth tracker and a count of skipped steps
// live in a small state buffer, the found-inf flag in another; the unscale kernel sets the flag, the
// optimizer's kernels read it (they leave parameters and state untouched when it is set) and the
// update kernel advances the state and clears it. Nothing is read back inside a step; `read()` is for logging and checkpoints.
//
// Per iteration, as in torch:  backward(scaler.scale(loss)); scaler.unscale(opt); clip...;
// scaler.step(opt); scaler.update().
import { empty, Tensor, zeros } from '../tensor';
import { mul, toF32 } from '../ops/elementwise';
import { rt } from '../../runtime/runtime';
import { launchUnscale, launchUpdateScale, SCALER } from '../../kernels/optim/grad-scaler';
import type { Optimizer } from './optimizer';

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

/** torch's GradScaler.state_dict(): what a checkpoint stores as "grad_scaler". */
export interface GradScalerState {
  scale: number;
  growth_factor: number;
  backoff_factor: number;
  growth_interval: number;
  _growth_tracker: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyOptimizer = Optimizer<any, any>;

export class GradScaler {
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  /** [scale (f32 bits), growth tracker, skipped steps] (kernels/optim/grad-scaler.ts). */
  private readonly state: Tensor;
  /** [found_inf]: set by unscale, read by the optimizer kernels, cleared by update. */
  private readonly flag: Tensor;
  /** The scale as an f32 tensor view of the state (0-d), for scaling the loss. */
  private readonly scaleView: Tensor;
  private unscaled = new Set<AnyOptimizer>();

  constructor(opts: GradScalerOptions = {}) {
    const initScale = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    if (!(initScale > 0 && Number.isFinite(initScale))) throw new Error(`GradScaler: initScale must be positive and finite, got ${initScale}`);
    if (!(this.growthFactor > 1)) throw new Error(`GradScaler: growthFactor must be > 1, got ${this.growthFactor}`);
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1)) throw new Error(`GradScaler: backoffFactor must be in (0, 1), got ${this.backoffFactor}`);
    if (!(Number.isInteger(this.growthInterval) && this.growthInterval > 0)) throw new Error(`GradScaler: growthInterval must be a positive integer, got ${this.growthInterval}`);
    this.state = empty([SCALER.words], 'u32').keep();
    this.flag = zeros([1], 'u32').keep();
    this.write(initScale, 0, 0);
    this.scaleView = new Tensor({ storage: this.state.storage, shape: [], dtype: 'f32', offset: SCALER.scale }).keep();
  }

  private write(scale: number, tracker: number, skipped: number): void {
    const words = new Uint32Array(SCALER.words);
    new Float32Array(words.buffer, SCALER.scale * 4, 1)[0] = scale;
    words[SCALER.tracker] = tracker;
    words[SCALER.skipped] = skipped;
    rt().write(this.state.buffer, 0, words);
  }

  /** loss × scale (f32, differentiable): backpropagate this instead of the loss. */
  scale(loss: Tensor): Tensor {
    return mul(toF32(loss), this.scaleView);
  }

  /** Divide the gradients of `optimizer`'s parameters by the scale, in place, and set the
   *  found-inf flag if any is inf or NaN. At most once per step; clip after this. */
  unscale(optimizer: AnyOptimizer): void {
    if (this.unscaled.has(optimizer)) throw new Error('GradScaler.unscale: already called for this optimizer since the last update()');
    this.unscaled.add(optimizer);
    const slots = [];
    for (const g of optimizer.paramGroups) {
      for (const p of g.params) {
        const grad = p.grad;
        if (!grad) continue;
        if (grad.dtype !== 'f32' || !grad.isContiguous()) throw new Error(`GradScaler.unscale: gradient of ${p.name ?? 'a parameter'} must be contiguous f32, got ${grad.dtype}`);
        slots.push({ n: grad.numel, grad: { buffer: grad.buffer, offset: grad.offset } });
      }
    }
    launchUnscale(slots, this.state.buffer, this.flag.buffer);
  }

  /** Unscale (if not done yet) and step the optimizer, which skips the update on the GPU when the
   *  gradients held inf or NaN. */
  step(optimizer: AnyOptimizer): void {
    if (!this.unscaled.has(optimizer)) this.unscale(optimizer);
    optimizer.step({ foundInf: this.flag.buffer });
  }

  /** Advance the scale (backoff on inf/NaN, growth after growthInterval clean steps), on the GPU. */
  update(): void {
    launchUpdateScale(this.state.buffer, this.flag.buffer, this.growthFactor, this.backoffFactor, this.growthInterval);
    this.unscaled.clear();
  }

  /** Read back the scale, growth tracker and the number of skipped steps so far (logging). */
  async read(): Promise<{ scale: number; growthTracker: number; skippedSteps: number }> {
    const words = Uint32Array.from(await this.state.data());
    const scale = new Float32Array(words.buffer, SCALER.scale * 4, 1)[0]!;
    return { scale, growthTracker: words[SCALER.tracker]!, skippedSteps: words[SCALER.skipped]! };
  }

  /** torch's state_dict (one readback: checkpoints only). */
  async stateDict(): Promise<GradScalerState> {
    const s = await this.read();
    return { scale: s.scale, growth_factor: this.growthFactor, backoff_factor: this.backoffFactor, growth_interval: this.growthInterval, _growth_tracker: s.growthTracker };
  }

  /** Restore the scale and growth tracker of a stateDict (the factors are the constructor's). */
  loadStateDict(s: GradScalerState): void {
    if (!(s.scale > 0 && Number.isFinite(s.scale)) || !(Number.isInteger(s._growth_tracker) && s._growth_tracker >= 0)) {
      throw new Error(`GradScaler.loadStateDict: invalid state ${JSON.stringify(s)}`);
    }
    this.write(s.scale, s._growth_tracker, 0);
  }

  dispose(): void {
    this.scaleView.dispose();
    this.state.dispose();
    this.flag.dispose();
  }
}
