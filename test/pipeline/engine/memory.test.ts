// The training memory report and the explanation of a step that does not fit the device.
import { describe, expect, it } from 'vitest';
import { GpuError } from '../../../runtime/device';
import { UserError } from '../../../runtime/errors';
import { loadConfig } from '../../../models/config/config';
import { explainMemoryError, isMemoryError, memoryReport, type MemorySnapshot } from '../../../pipeline/engine/memory';

const CONFIG = 'configs/sartorius_centermask_lite_V_19_slim.yaml';
const SNAP: MemorySnapshot = {
  peakBytes: 3 * 2 ** 30,
  allocatedBytes: 3.5 * 2 ** 30,
  largest: { bytes: 2 ** 29, label: 'tensor[4,128,512,512]f32' },
  maxBindingBytes: 2 ** 31,
  maxBufferBytes: 2 ** 32,
};

describe('training memory', () => {
  it('the report names the peak and the largest tensor', () => {
    const line = memoryReport(3, SNAP);
    expect(line).toContain('peak GPU memory over the first 3 iterations: 3072.0 MiB of live tensors');
    expect(line).toContain('largest tensor tensor[4,128,512,512]f32 512.0 MiB');
  });

  it('an out-of-memory error becomes a UserError naming the largest tensor and the remedies', () => {
    const cfg = loadConfig(CONFIG, ['SOLVER.IMS_PER_BATCH', '4']);
    const err = new GpuError('WebGPU GPUOutOfMemoryError: Allocation failed');
    expect(isMemoryError(err)).toBe(true);
    const e = explainMemoryError(err, 7, cfg, SNAP)!;
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toContain('training iteration 7 does not fit this device: WebGPU GPUOutOfMemoryError: Allocation failed');
    expect(e.message).toContain('The largest tensor since training started was tensor[4,128,512,512]f32 (512.0 MiB)');
    expect(e.message).toContain('SOLVER.AMP.ENABLED True');
    expect(e.message).toContain('SOLVER.MICRO_BATCH_SIZE 2 (gradient accumulation: 2 forward/backward passes of 2 images per iteration, the same batch of 4)');
    expect(e.message).toContain('INPUT.MAX_SIZE_TRAIN');
    // already accumulating by 2: suggest 1; already at 1 with AMP on: only smaller images
    const cfg1 = loadConfig(CONFIG, ['SOLVER.IMS_PER_BATCH', '4', 'SOLVER.MICRO_BATCH_SIZE', '2']);
    expect(explainMemoryError(err, 0, cfg1, SNAP)!.message).toContain('SOLVER.MICRO_BATCH_SIZE 1 ');
    const cfg2 = loadConfig(CONFIG, ['SOLVER.IMS_PER_BATCH', '4', 'SOLVER.MICRO_BATCH_SIZE', '1', 'SOLVER.AMP.ENABLED', 'True']);
    const m2 = explainMemoryError(err, 0, cfg2, SNAP)!.message;
    expect(m2).not.toContain('SOLVER.MICRO_BATCH_SIZE');
    expect(m2).not.toContain('SOLVER.AMP');
    expect(m2).toContain('INPUT.MIN_SIZE_TRAIN');
  });

  it('binding-limit errors are memory errors; other errors pass through', () => {
    const cfg = loadConfig(CONFIG, []);
    expect(isMemoryError(new Error("tensor [1,2] f32 needs 9 bytes, over this device's 8-byte storage binding limit"))).toBe(true);
    expect(explainMemoryError(new Error('model.losses returned no losses'), 0, cfg, SNAP)).toBeNull();
    expect(explainMemoryError('not an error', 0, cfg, SNAP)).toBeNull();
  });
});
