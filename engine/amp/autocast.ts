// Autocast (torch.autocast for this engine): inside `autocast(fn)` the ops of the f16 list
// (conv2d, conv_transpose2d, matmul, linear) cast their float operands and weight to f16 and
// produce f16 (biases stay f32: the kernels add them in f32); everything else runs in the dtype it
// is given, and the ops that compute in f32 only (losses, softmax, GroupNorm and BatchNorm
// statistics, pooling, interpolation, ROIAlign: torch's f32 list plus the ops without f16 kernels
// here) take f16 inputs through a differentiable cast to f32. Mixed f16/f32 binary ops promote to f32. A leaf's f16 copy (a parameter's) is made once per
// scope and reused, as torch caches weight casts; gradients flow back through the casts, so f32
// master weights receive f32 gradients.
import { rt } from '../../runtime/runtime';
import { cast } from '../ops/elementwise';
import type { Tensor } from '../tensor';

interface AutocastState {
  /** f16 copies of leaves (parameters) made in this scope. */
  cache: Map<Tensor, Tensor>;
}

let state: AutocastState | null = null;

/** Whether an autocast scope is active. */
export function isAutocastEnabled(): boolean {
  return state !== null;
}

/** Whether this adapter can autocast (f16 storage needs the `shader-f16` feature). */
export function autocastAvailable(): boolean {
  return rt().gpu.features.f16;
}

/**
 * Run `fn` (sync or async) with autocast on (`enabled` false: off, as torch's `enabled=False`
 * inside an autocast region). Throws when the adapter lacks `shader-f16`; callers that want a
 * fallback check `autocastAvailable()` first. Run backward outside the scope, as with torch.
 */
export function autocast<T>(fn: () => T, opts: { enabled?: boolean } = {}): T {
  const enabled = opts.enabled ?? true;
  if (enabled && !autocastAvailable()) throw new Error('autocast: needs f16 storage, which this adapter lacks (no shader-f16 feature)');
  const prev = state;
  state = enabled ? (prev ?? { cache: new Map() }) : null;
  const restore = () => {
    state = prev;
  };
  try {
    const r = fn();
    if (r instanceof Promise) return r.finally(restore) as T;
    restore();
    return r;
  } catch (e) {
    restore();
    throw e;
  }
}

/** Under autocast, a float tensor as the f16 operand of an f16-list op (a leaf's cast cached for
 *  the scope); outside autocast, the tensor itself. */
export function autocastF16(t: Tensor): Tensor {
  if (!state || t.dtype !== 'f32') return t;
  if (t.gradFn || t.isDisposed) return cast(t, 'f16');
  let c = state.cache.get(t);
  if (!c || c.isDisposed) {
    c = cast(t, 'f16');
    state.cache.set(t, c);
  }
  return c;
}
