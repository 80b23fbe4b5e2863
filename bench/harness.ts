// Benchmark timing shared by all suites: warm-up, median of repeats, GPU completion awaited
// (`rt().sync()`), and GPU time from timestamp queries when the device has them. Plus the
// machine's measured fp32 peak and copy bandwidth (once per process) so that suites can report a
// fraction of peak. Method: bench/README.md.

import { rt } from '../runtime/runtime';
import { defineKernel, read, rw } from '../kernels/define-kernel';
import { isSoftwareAdapter } from '../runtime/adapter';

export interface Timing {
  /** Median wall milliseconds per iteration (record + submit + wait for completion). */
  ms: number;
  min: number;
  samples: number[];
  /** Median GPU milliseconds between timestamps written before and after the work, if available. */
  gpuMs?: number;
}

export interface TimeOptions {
  warmup?: number;
  repeats?: number;
  /** Skip timestamp queries (e.g. for sub-millisecond cases where they only add overhead). */
  noTimestamps?: boolean;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Timestamps around the work: an empty pass writes one before, another one after. */
class GpuTimer {
  private qs: GPUQuerySet;
  private resolve: GPUBuffer;
  private read: GPUBuffer;
  constructor(private device: GPUDevice) {
    this.qs = device.createQuerySet({ type: 'timestamp', count: 2 });
    this.resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }
  private mark(index: 0 | 1): GPUCommandEncoder {
    const enc = this.device.createCommandEncoder({ label: 'bench.timestamp' });
    const writes: GPUComputePassTimestampWrites = index === 0 ? { querySet: this.qs, beginningOfPassWriteIndex: 0 } : { querySet: this.qs, endOfPassWriteIndex: 1 };
    enc.beginComputePass({ timestampWrites: writes }).end();
    return enc;
  }
  begin(): void {
    this.device.queue.submit([this.mark(0).finish()]);
  }
  async end(): Promise<number> {
    const enc = this.mark(1);
    enc.resolveQuerySet(this.qs, 0, 2, this.resolve, 0);
    enc.copyBufferToBuffer(this.resolve, 0, this.read, 0, 16);
    this.device.queue.submit([enc.finish()]);
    await this.read.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(this.read.getMappedRange().slice(0));
    this.read.unmap();
    return Number(t[1]! - t[0]!) / 1e6;
  }
}

let timer: GpuTimer | undefined;

/**
 * Time `fn` (which records GPU work through the runtime): `warmup` untimed calls (pipeline
 * compiles, pool warm-up), then `repeats` timed calls, each followed by `await rt().sync()`.
 */
export async function timeGpu(fn: () => void | Promise<void>, opts: TimeOptions = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 2;
  const repeats = opts.repeats ?? 7;
  const useTs = !opts.noTimestamps && rt().gpu.features.timestampQuery;
  if (useTs) timer ??= new GpuTimer(rt().device);
  for (let i = 0; i < warmup; i++) {
    await fn();
    await rt().sync();
  }
  const samples: number[] = [];
  const gpu: number[] = [];
  for (let i = 0; i < repeats; i++) {
    await rt().sync();
    if (useTs) timer!.begin();
    const t0 = performance.now();
    await fn();
    await rt().sync();
    samples.push(performance.now() - t0);
    if (useTs) gpu.push(await timer!.end());
  }
  return { ms: median(samples), min: Math.min(...samples), samples, gpuMs: useTs ? median(gpu) : undefined };
}

/** Time a host-side async operation (a peer's call plus its own completion wait). */
export async function timeAsync(fn: () => Promise<void>, opts: TimeOptions = {}): Promise<Timing> {
  for (let i = 0; i < (opts.warmup ?? 2); i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < (opts.repeats ?? 7); i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return { ms: median(samples), min: Math.min(...samples), samples };
}

// ---- machine peak ------------------------------------------------------------------------------

/** FMA_CHAINS independent vec4 chains per invocation, ITER iterations: 8·FMA_CHAINS FLOPs per
 *  iteration (an FMA counts 2). Independent chains hide the FMA latency; the result is stored so
 *  the compiler cannot drop the work; multiplier and addend come from a uniform. */
const FMA_CHAINS = 8;
const PEAK_WG = 64;
const fmaKernel = defineKernel({
  name: 'bench.peak_fma',
  bindings: { out: rw('vec4f') },
  params: { iters: 'u32', m: 'f32', c: 'f32' },
  code: () => /* wgsl */ `
@compute @workgroup_size(${PEAK_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let m = vec4f(p.m);
  let c = vec4f(p.c);
${Array.from({ length: FMA_CHAINS }, (_, i) => `  var a${i} = vec4f(f32(gid.x) + ${i}.0);`).join('\n')}
  for (var i = 0u; i < p.iters; i++) {
${Array.from({ length: FMA_CHAINS }, (_, i) => `    a${i} = fma(a${i}, m, c);`).join('\n')}
  }
  out[gid.x] = ${Array.from({ length: FMA_CHAINS }, (_, i) => `a${i}`).join(' + ')};
}`,
});

const copyKernel = defineKernel({
  name: 'bench.peak_copy',
  bindings: { src: read('vec4f'), dst: rw('vec4f') },
  params: { n: 'u32' },
  code: () => /* wgsl */ `
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * 65535u) * 256u + lid;
  if (i < p.n) { dst[i] = src[i]; }
}`,
});

export interface Peak {
  gflops: number;
  gbps: number;
  fmaMs: number;
  copyMs: number;
  /** Size of the copied buffer. */
  copyMiB: number;
}

let peakPromise: Promise<Peak> | undefined;

/** The machine's fp32 FMA throughput and copy bandwidth through this runtime (cached). */
export function machinePeak(repeats = 5): Promise<Peak> {
  peakPromise ??= measurePeak(repeats);
  return peakPromise;
}

async function measurePeak(repeats: number): Promise<Peak> {
  // A hardware GPU needs far more threads in flight than a CPU driver: 256 workgroups filled an
  // H100 to ~1/4 (14–18 TFLOP/s read), and a 64 MiB copy there is mostly launch latency.
  const hardware = !isSoftwareAdapter();
  const invocations = (hardware ? 8192 : 256) * PEAK_WG;
  const out = rt().pool.acquire(invocations * 16, GPUBufferUsage.STORAGE, 'bench.peak');
  // Size the loop for ~50 ms per dispatch: calibrate on a short run first.
  let iters = 256;
  const run = () => fmaKernel.dispatch({}, { out }, { iters, m: 0.999, c: 0.001 }, invocations / PEAK_WG);
  let t = await timeGpu(run, { warmup: 1, repeats: 1 });
  iters = Math.max(256, Math.round((iters * 50) / Math.max(t.gpuMs ?? t.ms, 0.5)));
  t = await timeGpu(run, { warmup: 1, repeats });
  const flops = invocations * iters * FMA_CHAINS * 4 * 2;
  const fmaMs = t.gpuMs ?? t.ms;

  const copyBytes = Math.min(hardware ? 512 << 20 : 64 << 20, rt().gpu.limits.maxStorageBufferBindingSize);
  const n = copyBytes / 16; // vec4s
  const src = rt().pool.acquire(n * 16, GPUBufferUsage.STORAGE, 'bench.copy.src');
  const dst = rt().pool.acquire(n * 16, GPUBufferUsage.STORAGE, 'bench.copy.dst');
  const wgs = Math.ceil(n / 256);
  const grid: [number, number] = [Math.min(wgs, 65535), Math.ceil(wgs / 65535)];
  const c = await timeGpu(() => copyKernel.dispatch({}, { src, dst }, { n }, grid), { warmup: 2, repeats });
  const copyMs = c.gpuMs ?? c.ms;
  for (const b of [out, src, dst]) rt().pool.release(b);
  return { gflops: flops / fmaMs / 1e6, gbps: (2 * n * 16) / copyMs / 1e6, fmaMs, copyMs, copyMiB: copyBytes / 2 ** 20 };
}
