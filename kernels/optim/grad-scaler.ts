// The GradScaler's kernels (engine/optim/grad-scaler.ts), as torch's _amp_foreach_non_finite_check_
// _and_unscale_ and _amp_update_scale_, so that mixed-precision training never reads the scale or
// the found-inf flag back inside a step:
//   unscale   g *= 1 / scale in place, for a few gradients per dispatch (the optimizer slots), and
//             found_inf = 1 where any result is inf or NaN (tested on the bits: lavapipe folds
//             v != v to false). Every invocation that finds one stores the same 1 (an atomic store,
//             only then: the scale is a plain read-only load, so the loop stays cheap).
//   update    one invocation: found_inf set → scale *= backoff, tracker = 0, skipped += 1; else
//             tracker + 1 reaching the interval → scale *= growth (kept only if finite), tracker = 0;
//             then found_inf = 0 for the next step.
// Two buffers: the flag [found_inf: u32], which the optimizer kernels' skip variants (optim.ts) bind
// and read at element 0, and the state [scale: f32 bits, tracker: u32, skipped: u32].
import { defineKernel, read, rw, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { chunkSlots, MAX_SLOTS, SLOT_COUNTS, slotPrologue, slotsPerDispatch, slotSwitch, wgStarts, type FlatF32 } from './slots';

/** Element indices in the scaler's state buffer. */
export const SCALER = { scale: 0, tracker: 1, skipped: 2, words: 3 } as const;

const unscaleKernel = defineKernel({
  name: 'amp:unscale',
  variants: { k: SLOT_COUNTS },
  bindings: {
    ...Object.fromEntries(Array.from({ length: MAX_SLOTS }, (_, j) => [`g${j}`, { type: 'f32', access: 'rw', when: (v: { k: number }) => j < v.k }])),
    scale: read('f32'),
    found: rw('atomic<u32>'),
  },
  params: { wg_start: ['u32', MAX_SLOTS], n: ['u32', MAX_SLOTS], g_off: ['u32', MAX_SLOTS] },
  code: (v: { k: number }) => `
${WGSL_LINEAR_WORKGROUP}
fn unscale_one(x: f32) -> f32 {
  let y = x * (1.0 / scale[${SCALER.scale}]);
  if ((bitcast<u32>(y) & 0x7fffffffu) >= 0x7f800000u) { atomicStore(&found[0], 1u); }
  return y;
}
${slotPrologue(v.k)}
${slotSwitch(v.k, (j) => `
      g${j}[p_g_off(s) + i] = unscale_one(g${j}[p_g_off(s) + i]);`)}`,
});

/** One gradient to unscale: `n` f32 elements. */
export interface UnscaleSlot {
  n: number;
  grad: FlatF32;
}

/** grads *= 1 / scale in place, setting the found-inf flag where a result is not finite. */
export function launchUnscale(slots: UnscaleSlot[], state: GPUBuffer, flag: GPUBuffer): void {
  const k = slotsPerDispatch(1, 2);
  for (const chunk of chunkSlots(slots, k, (s) => ({ read: [], rw: [s.grad.buffer] }))) {
    const { starts, total } = wgStarts(chunk);
    const buffers: Record<string, GPUBuffer> = { scale: state, found: flag };
    chunk.forEach((s, j) => (buffers[`g${j}`] = s.grad.buffer));
    unscaleKernel.dispatch({ k: chunk.length }, buffers as never, { wg_start: starts, n: chunk.map((s) => s.n), g_off: chunk.map((s) => s.grad.offset) }, total);
  }
}

const updateKernel = defineKernel({
  name: 'amp:update_scale',
  bindings: { state: rw('u32'), found: rw('u32') },
  params: { growth: 'f32', backoff: 'f32', interval: 'u32' },
  code: () => `
@compute @workgroup_size(1)
fn main() {
  var scale = bitcast<f32>(state[${SCALER.scale}]);
  if (found[0] != 0u) {
    scale = scale * p.backoff;
    state[${SCALER.tracker}] = 0u;
    state[${SCALER.skipped}] = state[${SCALER.skipped}] + 1u;
  } else {
    let successful = state[${SCALER.tracker}] + 1u;
    if (successful == p.interval) {
      let grown = scale * p.growth;
      if ((bitcast<u32>(grown) & 0x7fffffffu) < 0x7f800000u) { scale = grown; }
      state[${SCALER.tracker}] = 0u;
    } else {
      state[${SCALER.tracker}] = successful;
    }
  }
  state[${SCALER.scale}] = bitcast<u32>(scale);
  found[0] = 0u;
}`,
});

/** The scale update of one step (torch's _amp_update_scale_), then the flag cleared. */
export function launchUpdateScale(state: GPUBuffer, flag: GPUBuffer, growth: number, backoff: number, interval: number): void {
  updateKernel.dispatch({}, { state, found: flag }, { growth, backoff, interval }, 1);
}


