// SOLVER.AMP.ENABLED, Detectron2's mixed-precision key: on an adapter with f16 storage
// (`shader-f16`) the trainer runs each forward under autocast and scales the loss with a
// GradScaler (torch's defaults: initial scale 2^16, growth 2 every 2000 clean steps, backoff 0.5);
// without it, training falls back to f32 with one warning.
import type { CfgNode } from '../../models/config/config';
import { autocastAvailable } from '../../engine/amp/autocast';
import { GradScaler } from '../../engine/optim/grad-scaler';

/** A GradScaler when SOLVER.AMP.ENABLED and the adapter can run f16, else null (warning once
 *  through `warn` when the key asks for it and the adapter cannot). */
export function gradScalerOf(cfg: CfgNode, warn: (line: string) => void): GradScaler | null {
  if (!cfg.SOLVER.AMP.ENABLED) return null;
  if (!autocastAvailable()) {
    warn('warning: SOLVER.AMP.ENABLED is set but this adapter has no shader-f16 feature; training in f32');
    return null;
  }
  return new GradScaler();
}
