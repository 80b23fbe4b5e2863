// GPU memory during training: the report `cellseg train` prints after its first iterations (the
// peak of live tensor bytes, from the runtime's buffer pool, and the largest single buffer), and
// the error that replaces an allocation failure or a binding-limit error in a training step: it
// names the largest tensor since training started and suggests what shrinks it (mixed precision, gradient
// accumulation, smaller images).
import type { CfgNode } from '../../models/config/config';
import { UserError } from '../../runtime/errors';

export interface MemorySnapshot {
  /** Peak bytes of live buffers since the pool's resetPeak(). */
  peakBytes: number;
  /** Bytes the pool holds from the device (live + free for reuse). */
  allocatedBytes: number;
  /** The largest storage buffer acquired since resetPeak(): size class and label (`tensor[shape]dtype`). */
  largest: { bytes: number; label: string };
  /** The device's maxStorageBufferBindingSize and maxBufferSize. */
  maxBindingBytes: number;
  maxBufferBytes: number;
}

export const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** `peak GPU memory over the first N iterations: ...` */
export function memoryReport(iterations: number, s: MemorySnapshot): string {
  const largest = s.largest.bytes > 0 ? `; largest tensor ${s.largest.label || '?'} ${mib(s.largest.bytes)} (storage binding limit ${mib(s.maxBindingBytes)})` : '';
  return `peak GPU memory over the first ${iterations} iteration${iterations === 1 ? '' : 's'}: ${mib(s.peakBytes)} of live tensors, ${mib(s.allocatedBytes)} held by the buffer pool${largest}`;
}

/** Out-of-memory, allocation and binding-limit failures (Dawn's and cellgpu's own messages). */
const MEMORY_ERROR = /out ?of ?memory|not enough memory|failed to allocate|allocation failed|binding limit|storage binding|maxBufferSize|maxStorageBufferBindingSize|exceeds the max(imum)? buffer size/i;

export function isMemoryError(err: unknown): boolean {
  return err instanceof Error && MEMORY_ERROR.test(err.message);
}

/**
 * The UserError that explains a memory failure in training iteration `iteration`, or null when
 * `err` is something else. It quotes the original message, names the largest tensor, and lists
 * the config overrides that reduce memory: SOLVER.AMP.ENABLED, SOLVER.MICRO_BATCH_SIZE (when the
 * batch can still be split), and smaller INPUT sizes / crops.
 */
export function explainMemoryError(err: unknown, iteration: number, cfg: CfgNode, s: MemorySnapshot): UserError | null {
  if (!isMemoryError(err)) return null;
  const msg = (err as Error).message;
  const ims = cfg.SOLVER.IMS_PER_BATCH;
  const micro = cfg.SOLVER.MICRO_BATCH_SIZE || ims;
  const tips: string[] = [];
  if (!cfg.SOLVER.AMP.ENABLED) tips.push('SOLVER.AMP.ENABLED True (mixed precision: half-size activations)');
  if (micro > 1) {
    // the largest proper divisor of the current micro-batch (it divides IMS_PER_BATCH too)
    let next = Math.floor(micro / 2);
    while (micro % next !== 0) next--;
    tips.push(`SOLVER.MICRO_BATCH_SIZE ${next} (gradient accumulation: ${ims / next} forward/backward passes of ${next} image${next === 1 ? '' : 's'} per iteration, the same batch of ${ims})`);
  }
  const crop = cfg.INPUT.CROP.ENABLED ? `, or a smaller INPUT.CROP.SIZE (now ${JSON.stringify(cfg.INPUT.CROP.SIZE)})` : ', or INPUT.CROP.ENABLED True';
  tips.push(`smaller images: INPUT.MIN_SIZE_TRAIN (now ${JSON.stringify(cfg.INPUT.MIN_SIZE_TRAIN)}) and INPUT.MAX_SIZE_TRAIN (now ${cfg.INPUT.MAX_SIZE_TRAIN})${crop}`);
  const largest = s.largest.bytes > 0 ? `The largest tensor since training started was ${s.largest.label || '?'} (${mib(s.largest.bytes)}); ` : '';
  return new UserError(
    `training iteration ${iteration} does not fit this device: ${msg}\n` +
      `${largest}live tensors peaked at ${mib(s.peakBytes)} (storage binding limit ${mib(s.maxBindingBytes)}, buffer limit ${mib(s.maxBufferBytes)}).\n` +
      `To use less memory, override one of:\n${tips.map((t) => `  ${t}`).join('\n')}`,
  );
}
