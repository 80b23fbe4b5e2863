// Several devices in one process: openDevices gives distinct GPUDevices (here on the one adapter),
// withDevice switches the current runtime for sync and async sections, and a tensor stays on the
// device that allocated it (its buffer returns to that device's pool; data() reads from there).
import { beforeAll, describe, expect, it } from 'vitest';
import { init, rt, withDevice, type Runtime } from '../../runtime/runtime';
import { openDevices } from '../../runtime/devices';
import { adapterSlug, listDawnAdapters, parseDawnAdapterList } from '../../runtime/device';
import { fromArray, scopeAsync } from '../../engine/tensor';
import { add, mulScalar } from '../../engine/ops/elementwise';
import { permute } from '../../engine/ops/view';

let devs: readonly Runtime[];
beforeAll(async () => {
  await init();
  devs = await openDevices(2);
});

describe('several devices', () => {
  it('openDevices: device 0 is the process runtime, device 1 its own GPUDevice and pool; reopening reuses them', async () => {
    expect(devs).toHaveLength(2);
    expect(devs[0]).toBe(rt());
    expect(devs[1]!.device).not.toBe(devs[0]!.device);
    expect(devs[1]!.pool).not.toBe(devs[0]!.pool);
    const again = await openDevices(2);
    expect(again[1]).toBe(devs[1]);
    await expect(openDevices(0)).rejects.toThrow(/positive integer/);
  });

  it('withDevice: ops record on the chosen device; the runtime is restored after sync and async sections', async () => {
    const d1 = devs[1]!;
    const before1 = d1.stats().dispatches;
    const before0 = devs[0]!.stats().dispatches;
    const t = withDevice(d1, () => {
      expect(rt()).toBe(d1);
      const sum = add(fromArray([1, 2, 3, 4], [2, 2]), fromArray([10, 20, 30, 40], [2, 2]));
      void sum.buffer; // an elementwise result is pending until read (engine/lazy.ts): compute it here
      return sum;
    });
    expect(rt()).toBe(devs[0]);
    expect(d1.stats().dispatches).toBeGreaterThan(before1);
    expect(devs[0]!.stats().dispatches).toBe(before0);
    expect(t.storage.runtime).toBe(d1);
    // read back (contiguous, and a permuted view that needs a copy on its own device) from device 0's context
    expect([...(await t.data())]).toEqual([11, 22, 33, 44]);
    const tt = withDevice(d1, () => permute(t, [1, 0]));
    expect([...(await tt.data())]).toEqual([11, 33, 22, 44]);
    const live1 = d1.pool.getStats().liveBytes;
    tt.dispose();
    t.dispose(); // goes back to device 1's pool, though device 0 is current
    expect(d1.pool.getStats().liveBytes).toBeLessThan(live1);

    const v = await withDevice(d1, async () => {
      const x = fromArray([1, 2]);
      const y = await scopeAsync(async () => {
        await Promise.resolve();
        return mulScalar(x, 3);
      });
      expect(rt()).toBe(d1);
      return [...(await y.data())];
    });
    expect(v).toEqual([3, 6]);
    expect(rt()).toBe(devs[0]);
    // an error restores the runtime too
    expect(() => withDevice(d1, () => { throw new Error('boom'); })).toThrow('boom');
    expect(rt()).toBe(devs[0]);
  });

  it("Dawn's adapter list: parsed from its error, and device 0's adapter is on it", async () => {
    const msg = "no suitable backends found\nAvailable adapters:\n * backend: 'vulkan', name: 'NVIDIA H100 80GB HBM3'\n * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'\n";
    expect(parseDawnAdapterList(msg)).toEqual([
      { backend: 'vulkan', name: 'NVIDIA H100 80GB HBM3' },
      { backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)' },
    ]);
    expect(adapterSlug('llvmpipe (LLVM 15.0.6, 256 bits)')).toBe('llvmpipe-llvm-15-0-6-256-bits-');
    if (rt().gpu.runtime !== 'dawn.node') return;
    const all = await listDawnAdapters();
    expect(all.map((a) => adapterSlug(a.name))).toContain(rt().gpu.adapter.device);
  });
});
