// Data-dependent shapes: nonzero and maskedSelect. The output size depends on the data, so these
// ops READ BACK ONE NUMBER (the count) and are async: they flush the pending batch and wait for
// the GPU. Never use them inside forward/backward/optimizer hot paths; use them in
// post-processing. Everything else stays on the GPU: flags -> prefix sum (kernels/indexing/compact.ts) ->
// compaction; only the total count (4 bytes) comes back to the CPU.
import { isGradEnabled, record } from '../autograd';
import { type DType, isFloat } from '../../runtime/dtype';
import { rt } from '../../runtime/runtime';
import { empty, type Tensor } from '../tensor';
import { type CompactOperands, launchCompact, launchExclusiveScan, launchExpand, launchNonzeroCoords } from '../../kernels/indexing/compact';
import { launchMap } from '../../kernels/elementwise/map';
import { broadcastShapes, mapRaw } from './elementwise';
import { sumToShape } from './view';

interface Scanned {
  /** u32 flags (1 where the element is nonzero), contiguous, `shape`. */
  flags: Tensor;
  /** Exclusive prefix sum of flags, n + 1 entries; pos[n] = count. */
  pos: Tensor;
  count: number;
  ops: CompactOperands;
}

/** Flags of `mask` broadcast to `shape`, their scan, and the read-back count. */
async function scanMask(mask: Tensor, shape: readonly number[], valueType: DType, op: string): Promise<Scanned> {
  const n = shape.reduce((a, b) => a * b, 1);
  // The scan over the flags is one sequence (no binding-sized blocks): refuse clearly.
  if ((n + 1) * 4 > rt().bindingLimit) throw new Error(`${op}: [${shape}] has ${n} elements, whose ${(n + 1) * 4}-byte flag scan is over the ${rt().bindingLimit}-byte storage binding limit (select from smaller pieces)`);
  const computeType: DType = mask.dtype === 'bool' ? 'u32' : isFloat(mask.dtype) ? 'f32' : mask.dtype;
  // Floats are tested on their bits: WGSL lets compilers assume no NaNs, so `x != 0.0` may be false
  // for NaN; NaN must count as nonzero and -0 as zero (torch).
  const test = computeType === 'f32' ? '(bitcast<u32>(x) & 0x7fffffffu) != 0u' : `x != ${computeType}(0)`;
  const flags = mapRaw('nonzeroFlag', `select(0u, 1u, ${test})`, [mask], shape, 'u32', computeType);
  const pos = empty([n + 1], 'u32');
  launchExclusiveScan(flags.buffer, flags.offset, n, pos.buffer, pos.offset);
  const count = new Uint32Array(await rt().read(pos.buffer, (pos.offset + n) * 4, 4))[0]!;
  const ops: CompactOperands = { flags: flags.buffer, flagsOffset: flags.offset, pos: pos.buffer, posOffset: pos.offset, n, dtype: valueType };
  return { flags, pos, count, ops };
}

/**
 * Coordinates of the nonzero elements of `t`, row-major order: an i32 tensor [count, ndim]
 * (torch.nonzero). Syncs with the GPU to read the count — not for hot paths.
 */
export async function nonzero(t: Tensor): Promise<Tensor> {
  const s = await scanMask(t, t.shape, 'u32', 'nonzero');
  const out = empty([s.count, t.ndim], 'i32');
  if (s.count > 0) launchNonzeroCoords(s.ops.flags, s.ops.flagsOffset, s.ops.pos, s.ops.posOffset, t.shape, s.ops.n, out.buffer);
  s.flags.dispose();
  s.pos.dispose();
  return out;
}

/**
 * The elements of `t` where `mask` is nonzero (true), as a 1-D tensor in row-major order of the
 * broadcast shape (torch.masked_select; t and mask broadcast together). Syncs with the GPU to read
 * the count — not for hot paths. Differentiable in `t` (the gradient is scattered back).
 */
export async function maskedSelect(t: Tensor, mask: Tensor): Promise<Tensor> {
  const shape = broadcastShapes(t.shape, mask.shape);
  const sameShape = shape.length === t.ndim && shape.every((n, i) => n === t.shape[i]);
  let values = t;
  if (!(sameShape && t.isContiguous())) {
    values = empty(shape, t.dtype);
    launchMap({ name: 'copy', expr: 'a', inputs: [t], out: values });
  }
  const s = await scanMask(mask, shape, t.dtype, 'maskedSelect');
  const out = empty([s.count], t.dtype);
  if (s.count > 0) launchCompact(s.ops, values.buffer, values.offset, out.buffer, out.offset);
  if (values !== t) values.dispose();
  if (!t.requiresGrad || !isGradEnabled()) {
    s.flags.dispose();
    s.pos.dispose();
    return out;
  }
  return record(out, 'maskedSelect', [t], (g) => {
    const gc = g.isContiguous() ? g : mapRaw('copy', 'x', [g], g.shape, g.dtype, g.dtype);
    const full = empty(shape, g.dtype);
    launchExpand({ ...s.ops, flags: s.flags.buffer, pos: s.pos.buffer, dtype: g.dtype }, gc.buffer, gc.offset, full.buffer, full.offset);
    if (gc !== g) gc.dispose();
    const gi = sumToShape(full, t.shape);
    if (gi !== full) full.dispose();
    return [gi];
  });
}
