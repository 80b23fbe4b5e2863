// The Dawn pacer (runtime/dawn-pacer.ts): Dawn's completion polls sleep instead of spinning once a wait
// is past its first SPIN_MS, results are unchanged, and every other setImmediate caller gets Node's
// behaviour.
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import { MAX_SLEEP_MS, pacerStats, pollDelayMs, SPIN_MS } from '../../runtime/dawn-pacer';
import { rt } from '../../runtime/runtime';

beforeAll(async () => {
  await cg.init();
});

describe('dawn pacer', () => {
  it('spins first, then sleeps a twentieth of the time waited, at most MAX_SLEEP_MS', () => {
    expect(pollDelayMs(0)).toBe(0);
    expect(pollDelayMs(SPIN_MS / 2)).toBe(0);
    expect(pollDelayMs(SPIN_MS)).toBeGreaterThan(0);
    expect(pollDelayMs(Math.max(SPIN_MS, 5))).toBeCloseTo(0.05 * Math.max(SPIN_MS, 5), 12);
    expect(pollDelayMs(1e6)).toBe(MAX_SLEEP_MS);
    for (let t = SPIN_MS; t < 100; t *= 1.7) expect(pollDelayMs(t)).toBeLessThanOrEqual(Math.max(0.005, 0.05 * t));
  });

  it('is installed in Node unless CELLGPU_DAWN_SPIN=1', () => {
    expect(pacerStats().installed).toBe(process.env.CELLGPU_DAWN_SPIN !== '1');
  });

  it('sleeps through a long GPU wait, and the result is exact', async () => {
    // A ~1e8-FLOP matmul: tens of ms on lavapipe, well past the spin window.
    const a = cg.fromArray(Float32Array.from({ length: 384 * 384 }, (_, i) => (i % 7) - 3), [384, 384]);
    const b = cg.fromArray(Float32Array.from({ length: 384 * 384 }, (_, i) => (i % 5) - 2), [384, 384]);
    await rt().sync();
    const before = pacerStats();
    const c = cg.matmul(a, b);
    const t0 = performance.now();
    await rt().sync();
    const waited = performance.now() - t0;
    const after = pacerStats();
    expect(after.polls).toBeGreaterThan(before.polls);
    // A fast GPU finishes inside the spin window (an H100: a few polls). A wait that Dawn polled
    // 200 times ran past the 0.5 ms spin (polls come every 5-20 us), so it must have slept; wall
    // time alone says nothing (a busy host can delay the first poll past the work's end).
    if (after.installed && after.polls - before.polls > 200) expect(after.sleeps, `waited ${waited.toFixed(1)} ms`).toBeGreaterThan(before.sleeps);
    const got = (await c.data()) as Float32Array;
    // Small integers: every sum is exact in f32.
    for (const [i, j] of [[0, 0], [17, 300], [383, 383], [200, 5]] as const) {
      let ref = 0;
      for (let k = 0; k < 384; k++) ref += (((i * 384 + k) % 7) - 3) * (((k * 384 + j) % 5) - 2);
      expect(got[i * 384 + j]).toBe(ref);
    }
    for (const t of [a, b, c]) t.dispose();
  });

  it('leaves other setImmediate callers alone: arguments, order, promisify, clearImmediate', async () => {
    const order: string[] = [];
    await new Promise<void>((resolve) => {
      setImmediate((x: string, y: string) => order.push(x + y), 'a', 'b');
      const cancelled = setImmediate(() => order.push('cancelled'));
      clearImmediate(cancelled);
      setImmediate(function named() {
        order.push('c');
        resolve();
      });
    });
    expect(order).toEqual(['ab', 'c']);
    expect(await promisify(setImmediate)('value')).toBe('value');
  });
});
