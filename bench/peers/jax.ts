// jax-js (@jax-js/jax) on its WebGPU device, in this process: the `webgpu` globals and a
// `navigator = { gpu, userAgent, hardwareConcurrency }` shim (installNavigator), `init('webgpu')`,
// then `defaultDevice('webgpu')`. Inputs reused across calls are passed as `.ref` (jax-js moves
// arrays into calls); completion is `blockUntilReady()` on the outputs.
import { median, type Timing } from '../harness';
import { installNavigator } from './tfjs';

type Jax = typeof import('@jax-js/jax');
export type JaxArray = import('@jax-js/jax').Array;

export interface JaxPeer {
  name: 'jax-js-webgpu';
  jax: Jax;
  /** Warm-up then median of `repeats` calls; outputs awaited with blockUntilReady and disposed. */
  time(fn: () => JaxArray, opts?: { warmup?: number; repeats?: number }): Promise<Timing>;
}

let peer: Promise<JaxPeer> | undefined;

export function loadJax(): Promise<JaxPeer> {
  peer ??= (async () => {
    await installNavigator();
    const jax = (await import('@jax-js/jax')) as Jax;
    const devices = await jax.init('webgpu');
    if (!devices.includes('webgpu')) throw new Error(`jax-js: no webgpu device (got ${devices.join(', ') || 'none'})`);
    jax.defaultDevice('webgpu');
    const time: JaxPeer['time'] = async (fn, opts = {}) => {
      const once = async () => {
        const out = fn();
        await out.blockUntilReady();
        out.dispose();
      };
      for (let i = 0; i < (opts.warmup ?? 2); i++) await once();
      const samples: number[] = [];
      for (let i = 0; i < (opts.repeats ?? 7); i++) {
        const t0 = performance.now();
        await once();
        samples.push(performance.now() - t0);
      }
      return { ms: median(samples), min: Math.min(...samples), samples };
    };
    return { name: 'jax-js-webgpu' as const, jax, time };
  })();
  return peer;
}
