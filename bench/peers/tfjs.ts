// TensorFlow.js with the WebGPU backend, in this process on its own Dawn device (same adapter),
// started through the `navigator` shim below (the `webgpu` package's globals and a
// `navigator.gpu`). Completion: end tfjs's open compute pass, submit its encoder, and await the
// queue. Reusable by every suite (matmul, conv...).
import { median, type Timing } from '../harness';

type Tf = typeof import('@tensorflow/tfjs');
export type TfTensor = import('@tensorflow/tfjs').Tensor;

interface WebGpuBackend {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export interface TfjsPeer {
  name: 'tfjs-webgpu';
  tf: Tf;
  /** Submit everything tfjs recorded and wait for the GPU. */
  sync(): Promise<void>;
  /** Warm-up then median of `repeats` calls of `fn` (outputs disposed), GPU completion awaited. */
  time(fn: () => TfTensor | TfTensor[], opts?: { warmup?: number; repeats?: number }): Promise<Timing>;
}

let peer: Promise<TfjsPeer> | undefined;

/** The navigator shim both peers need (jax-js also reads userAgent and hardwareConcurrency). */
export async function installNavigator(): Promise<void> {
  const g = globalThis as Record<string, unknown>;
  if ((g.navigator as { gpu?: unknown } | undefined)?.gpu) return;
  const webgpu = (await import('webgpu')) as unknown as { create: (f: string[]) => GPU; globals: Record<string, unknown> };
  for (const [k, v] of Object.entries(webgpu.globals)) if (!(k in g)) g[k] = v;
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu: webgpu.create([]), userAgent: 'Node.js', hardwareConcurrency: 2 },
    configurable: true,
    writable: true,
  });
}

export function loadTfjs(): Promise<TfjsPeer> {
  peer ??= (async () => {
    await installNavigator();
    const tf = (await import('@tensorflow/tfjs')) as Tf;
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend failed to initialise');
    await tf.ready();
    const backend = tf.backend() as unknown as WebGpuBackend;
    const sync = async () => {
      backend.ensureCommandEncoderReady();
      backend.endComputePassEncoder();
      backend.submitQueue();
      await backend.device.queue.onSubmittedWorkDone();
    };
    const time: TfjsPeer['time'] = async (fn, opts = {}) => {
      const once = async () => {
        const out = fn();
        await sync();
        tf.dispose(out);
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
    return { name: 'tfjs-webgpu' as const, tf, sync, time };
  })();
  return peer;
}
