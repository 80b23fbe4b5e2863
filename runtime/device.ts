// The one place that acquires the GPU. In Node the adapter comes from Dawn (npm `webgpu`); in a
// browser from `navigator.gpu`. Limits the framework relies on are raised to the adapter's maxima
// (the defaults are far lower: 8 storage buffers, 16 KiB workgroup memory, 256 invocations) and
// the optional features we can use are enabled when present, never required.

import { installDawnPacer } from './dawn-pacer';

export interface GpuFeatures {
  f16: boolean;
  timestampQuery: boolean;
  subgroups: boolean;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

/** The limits we raise to the adapter maximum; everything else keeps WebGPU's default. */
export const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
  'maxBindingsPerBindGroup',
] as const;

export type RaisedLimit = (typeof RAISED_LIMITS)[number];

export class GpuUnavailableError extends Error {
  override name = 'GpuUnavailableError';
}

/** A WGSL compile error, a validation error, or device loss, named by the kernel (label). */
export class GpuError extends Error {
  override name = 'GpuError';
}

export interface Gpu {
  device: GPUDevice;
  adapter: AdapterSummary;
  features: GpuFeatures;
  limits: Record<RaisedLimit, number>;
  /** How the adapter was obtained: 'dawn.node' or 'navigator.gpu'. */
  runtime: 'dawn.node' | 'navigator.gpu';
  /**
   * The GPU instance. Held for the device's lifetime: if dawn.node's instance is garbage collected
   * while its device lives, the process crashes (SIGSEGV / futex abort) on the next shader compile.
   */
  instance: GPU;
  /** Throws the first asynchronous error (validation, OOM, device loss) seen since the last call. */
  throwIfFailed(): void;
}

export interface DeviceOptions {
  /** Extra Dawn `create()` flags in Node, e.g. 'disable-dawn-features=timestamp_quantization'. */
  dawnFlags?: string[];
  /** 'high-performance' by default. */
  powerPreference?: GPUPowerPreference;
}

const INSTALL_HINT_LINUX =
  'No WebGPU adapter was found. On a Linux host without a GPU, WebGPU runs on Mesa\'s lavapipe ' +
  '(a CPU Vulkan driver), which must be Mesa >= 24 (Dawn rejects Mesa 22).\n' +
  '  Debian 12 / Ubuntu: run as root `sh scripts/setup-lavapipe.sh` (installs libvulkan1 and ' +
  'mesa-vulkan-drivers, from bookworm-backports on Debian 12)\n' +
  '  or by hand: apt-get install -y -t bookworm-backports libvulkan1 mesa-vulkan-drivers\n' +
  '  Then check with: npx cellseg doctor\n' +
  'If a driver is installed, check that VK_ICD_FILENAMES / VK_DRIVER_FILES do not hide it.';

let gpuPromise: Promise<Gpu> | undefined;

/** The process-wide GPU, created on first use. */
export function getGpu(options: DeviceOptions = {}): Promise<Gpu> {
  gpuPromise ??= createGpu(options).catch((err) => {
    gpuPromise = undefined;
    throw err;
  });
  return gpuPromise;
}

/** A new device of its own, beside the process-wide one (data parallelism: runtime.ts
 *  `openDevices`). Each call asks WebGPU for an adapter again, because an adapter that made a
 *  device is consumed; WebGPU offers no enumeration, so it is the adapter that `powerPreference`
 *  selects (in Node, `dawnFlags: ['adapter=NAME']` picks another one by name). */
export function openGpu(options: DeviceOptions = {}): Promise<Gpu> {
  return createGpu(options);
}

export interface DawnAdapterEntry {
  backend: string;
  name: string;
}

/** The adapter list in Dawn's "no suitable backends found" error (` * backend: 'vulkan', name: '...'`). */
export function parseDawnAdapterList(message: string): DawnAdapterEntry[] {
  const out: DawnAdapterEntry[] = [];
  for (const m of message.matchAll(/^\s*\*\s*backend:\s*'([^']*)',\s*name:\s*'(.*)'\s*$/gm)) out.push({ backend: m[1]!, name: m[2]! });
  return out;
}

/** An adapter name as Dawn reports it in `GPUAdapterInfo.device` ('llvmpipe (LLVM 15.0.6, 256 bits)'
 *  -> 'llvmpipe-llvm-15-0-6-256-bits-'). */
export function adapterSlug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

/**
 * Every adapter Dawn (Node) can open, by backend and name: WebGPU has no enumeration, but Dawn lists
 * them when asked for an adapter name that matches none. [] in a browser or when the list cannot be
 * had. Such a name, passed as `dawnFlags: ['adapter=NAME', 'backend=BACKEND']`, opens that adapter.
 */
export async function listDawnAdapters(): Promise<DawnAdapterEntry[]> {
  let gpu: GPU;
  try {
    ({ gpu } = await getNavigatorGpu(['adapter=\u0001cellgpu-list-adapters']));
  } catch {
    return [];
  }
  try {
    await gpu.requestAdapter();
    return [];
  } catch (err) {
    return parseDawnAdapterList(String((err as Error)?.message ?? err));
  }
}

/** Forget the process-wide GPU (tests that need a fresh device, or after device loss). */
export function resetGpu(): void {
  gpuPromise = undefined;
}

async function getNavigatorGpu(dawnFlags: string[]): Promise<{ gpu: GPU; runtime: Gpu['runtime'] }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) {
    if (!nav?.gpu) {
      throw new GpuUnavailableError(
        'This browser does not expose WebGPU (navigator.gpu is undefined). Use a browser with ' +
          'WebGPU enabled (Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu).',
      );
    }
    return { gpu: nav.gpu, runtime: 'navigator.gpu' };
  }
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (err) {
    throw new GpuUnavailableError(
      `The npm package 'webgpu' (Dawn for Node) could not be loaded: ${(err as Error).message}\n` +
        'Run `npm install` in the project root.',
    );
  }
  // WebGPU's classes (GPUBufferUsage, GPUShaderStage, ...) become globals, as in a browser.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  installDawnPacer(); // Dawn polls for completion by spinning the main thread; see runtime/dawn-pacer.ts
  return { gpu: mod.create(dawnFlags), runtime: 'dawn.node' };
}

async function createGpu(options: DeviceOptions): Promise<Gpu> {
  const { gpu, runtime } = await getNavigatorGpu(options.dawnFlags ?? []);
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    const isLinux = typeof process !== 'undefined' && process.platform === 'linux';
    throw new GpuUnavailableError(
      isLinux ? INSTALL_HINT_LINUX : 'No WebGPU adapter was found: install or update the GPU driver.',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const wanted: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups' as GPUFeatureName];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'cellgpu' });

  const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const summary: AdapterSummary = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    subgroupMinSize: info.subgroupMinSize,
    subgroupMaxSize: info.subgroupMaxSize,
  };

  let pending: GpuError | undefined;
  device.addEventListener('uncapturederror', (ev) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    pending ??= new GpuError(`WebGPU ${e.constructor?.name ?? 'error'}: ${e.message}`);
  });
  let lost: GpuError | undefined;
  void device.lost.then((l) => {
    if (l.reason !== 'destroyed') lost = new GpuError(`WebGPU device lost (${l.reason}): ${l.message}`);
  });

  const limits = {} as Record<RaisedLimit, number>;
  for (const name of RAISED_LIMITS) limits[name] = (device.limits as unknown as Record<string, number>)[name];

  return {
    device,
    adapter: summary,
    runtime,
    instance: gpu,
    features: {
      f16: device.features.has('shader-f16'),
      timestampQuery: device.features.has('timestamp-query'),
      subgroups: device.features.has('subgroups' as GPUFeatureName),
    },
    limits,
    throwIfFailed() {
      if (lost) throw lost;
      if (pending) {
        const e = pending;
        pending = undefined;
        throw e;
      }
    },
  };
}

/**
 * Compile a WGSL module and a compute pipeline, turning compile and validation errors into a
 * GpuError that names the kernel and quotes the offending WGSL line.
 */
export async function compileComputePipeline(
  device: GPUDevice,
  label: string,
  code: string,
  entryPoint = 'main',
  layout: GPUPipelineLayout | 'auto' = 'auto',
): Promise<GPUComputePipeline> {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label, code });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length) {
    await device.popErrorScope();
    throw new GpuError(formatCompileErrors(label, code, errors));
  }
  const pipeline = await device
    .createComputePipelineAsync({ label, layout, compute: { module, entryPoint } })
    .catch((err: Error) => {
      throw new GpuError(`kernel '${label}': pipeline creation failed: ${err.message}`);
    });
  const scopeError = await device.popErrorScope();
  if (scopeError) throw new GpuError(`kernel '${label}': ${scopeError.message}`);
  return pipeline;
}

/**
 * Synchronous variant for the hot path: errors surface on the next `throwIfFailed()` sync point,
 * with the kernel's label in Dawn's message. Compile errors are rechecked asynchronously.
 */
export function createComputePipelineSync(
  device: GPUDevice,
  label: string,
  code: string,
  onCompileError: (err: GpuError) => void,
  entryPoint = 'main',
  layout: GPUPipelineLayout | 'auto' = 'auto',
): GPUComputePipeline {
  const module = device.createShaderModule({ label, code });
  void module.getCompilationInfo().then((info) => {
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) onCompileError(new GpuError(formatCompileErrors(label, code, errors)));
  });
  return device.createComputePipeline({ label, layout, compute: { module, entryPoint } });
}

/**
 * Asynchronous variant: the driver may compile on its own threads (Chromium does), so several
 * kernels compile at once while recording goes on. Compile and validation errors reject the
 * promise as a GpuError naming the kernel (no error scope: scopes do not nest across awaits).
 */
export async function createComputePipelineAsync(
  device: GPUDevice,
  label: string,
  code: string,
  entryPoint: string,
  layout: GPUPipelineLayout,
): Promise<GPUComputePipeline> {
  const module = device.createShaderModule({ label, code });
  const [info, pipeline] = await Promise.allSettled([
    module.getCompilationInfo(),
    device.createComputePipelineAsync({ label, layout, compute: { module, entryPoint } }),
  ]);
  const errors = info.status === 'fulfilled' ? info.value.messages.filter((m) => m.type === 'error') : [];
  if (errors.length) throw new GpuError(formatCompileErrors(label, code, errors));
  if (pipeline.status === 'rejected') throw new GpuError(`kernel '${label}': pipeline creation failed: ${(pipeline.reason as Error).message}`);
  return pipeline.value;
}

export function formatCompileErrors(label: string, code: string, errors: readonly GPUCompilationMessage[]): string {
  const lines = code.split('\n');
  const parts = errors.map((m) => {
    const src = m.lineNum > 0 ? lines[m.lineNum - 1] ?? '' : '';
    const caret = m.linePos > 0 ? ' '.repeat(m.linePos - 1) + '^' : '';
    return `  line ${m.lineNum}:${m.linePos}: ${m.message}\n    ${src}\n    ${caret}`;
  });
  return `WGSL compile error in kernel '${label}':\n${parts.join('\n')}`;
}
