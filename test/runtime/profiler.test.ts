// The profiler (runtime/profiler.ts, Runtime.profile): every dispatch of the region is counted
// under its kernel name, device time comes from timestamp queries where the device has them, the
// counters match the runtime's, results are the same as unprofiled, and regions do not nest.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import { rt } from '../../runtime/runtime';

beforeAll(async () => {
  await cg.init();
});

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));

async function work(): Promise<number[]> {
  const a = cg.fromArray(values(37 * 53, 1), [37, 53]);
  const b = cg.fromArray(values(53 * 29, 2), [53, 29]);
  const y = cg.relu(cg.add(cg.matmul(a, b), 0.5));
  const s = cg.sum(y, [1]);
  const out = await s.toArray();
  for (const t of [a, b, y, s]) t.dispose();
  return out;
}

describe('profile()', () => {
  it('counts every dispatch by kernel, with device time where timestamps exist', async () => {
    const plain = await work();
    const before = rt().stats();
    const { result, report } = await rt().profile(work);
    const after = rt().stats();
    expect(result).toEqual(plain);
    expect(report.dispatches).toBe(after.dispatches - before.dispatches);
    expect(report.dispatches).toBeGreaterThanOrEqual(3);
    expect(report.kernels.reduce((s, k) => s + k.calls, 0)).toBe(report.dispatches);
    expect(report.readbacks).toBe(1);
    expect(report.submits).toBeGreaterThanOrEqual(1);
    expect(report.wallMs).toBeGreaterThan(0);
    expect(report.hostMs).toBeLessThanOrEqual(report.wallMs);
    for (const k of report.kernels) {
      expect(k.name).not.toContain('(');
      expect(k.dispatchMs).toBeGreaterThanOrEqual(0);
    }
    if (rt().gpu.features.timestampQuery) {
      expect(report.deviceMs).toBeGreaterThan(0);
      for (const k of report.kernels) expect(k.deviceMs).toBeGreaterThanOrEqual(0);
      const sorted = report.kernels.map((k) => k.deviceMs!);
      expect(sorted).toEqual([...sorted].sort((x, y) => y - x));
    } else {
      expect(report.deviceMs).toBeUndefined();
    }
    const table = cg.formatProfile(report);
    for (const k of report.kernels) expect(table).toContain(k.name);
    expect(table).toMatch(/\d+ dispatches/);
  });

  it('handles more dispatches than one batch of timestamps', async () => {
    cg.setFusion(false); // 300 separate adds (fused they would be a few kernels)
    const { report } = await rt().profile(async () => {
      let x = cg.fromArray(values(101, 3), [101]);
      for (let i = 0; i < 300; i++) {
        const y = cg.add(x, 1);
        x.dispose();
        x = y;
      }
      const out = await x.toArray();
      x.dispose();
      return out;
    });
    cg.setFusion(true);
    expect(report.dispatches).toBeGreaterThanOrEqual(300);
    expect(report.submits).toBeGreaterThanOrEqual(3);
    if (report.deviceMs !== undefined) expect(report.kernels[0]!.deviceMs).toBeGreaterThan(0);
  });

  it('refuses nested regions and leaves the runtime unprofiled after an error', async () => {
    await expect(rt().profile(() => rt().profile(() => 1))).rejects.toThrow(/already running/);
    await expect(rt().profile(() => { throw new Error('boom'); })).rejects.toThrow('boom');
    const { report } = await rt().profile(() => 1);
    expect(report.dispatches).toBe(0);
    expect(cg.kernelName('conv_fwd(tm=16,vec=true)')).toBe('conv_fwd');
  });
});
