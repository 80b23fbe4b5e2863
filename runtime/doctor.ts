// `cellseg doctor`: what WebGPU adapter we got, which optional features are on, the limits that
// matter, and a small kernel whose every output element is checked against a CPU reference.
import { compileComputePipeline, getGpu, type Gpu } from './device';

export interface DoctorReport {
  gpu: Gpu;
  kernelOk: boolean;
  kernelMs: number;
  lines: string[];
}

const CHECK_KERNEL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= arrayLength(&out)) { return; }
  out[i] = i * i + 7u;
}`;

export async function runDoctor(): Promise<DoctorReport> {
  const gpu = await getGpu();
  const { device, adapter, features, limits } = gpu;
  const lines: string[] = [];
  lines.push(`runtime      ${gpu.runtime}${typeof process !== 'undefined' ? ` (node ${process.versions.node})` : ''}`);
  lines.push(`adapter      ${adapter.description || adapter.device || '(no description)'}`);
  lines.push(`             vendor=${adapter.vendor || '?'} architecture=${adapter.architecture || '?'} fallback=${adapter.isFallbackAdapter}`);
  if (adapter.subgroupMinSize) lines.push(`             subgroup size ${adapter.subgroupMinSize}..${adapter.subgroupMaxSize}`);
  const on = (b: boolean) => (b ? 'on' : 'off');
  lines.push(`features     shader-f16 ${on(features.f16)}, timestamp-query ${on(features.timestampQuery)}, subgroups ${on(features.subgroups)}`);
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  lines.push(`limits       storage binding ${mib(limits.maxStorageBufferBindingSize)}, buffer ${mib(limits.maxBufferSize)}, ` +
    `storage buffers/stage ${limits.maxStorageBuffersPerShaderStage}`);
  lines.push(`             workgroup storage ${limits.maxComputeWorkgroupStorageSize} B, invocations/workgroup ` +
    `${limits.maxComputeInvocationsPerWorkgroup}, workgroups/dim ${limits.maxComputeWorkgroupsPerDimension}`);
  if (typeof process !== 'undefined' && process.env.LP_NUM_THREADS) lines.push(`LP_NUM_THREADS=${process.env.LP_NUM_THREADS}`);

  const n = 4099;
  const t0 = performance.now();
  const pipeline = await compileComputePipeline(device, 'doctor.square', CHECK_KERNEL);
  const buf = device.createBuffer({ label: 'doctor.out', size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
  new Uint32Array(buf.getMappedRange()).fill(0xdeadbeef);
  buf.unmap();
  const read = device.createBuffer({ label: 'doctor.read', size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder({ label: 'doctor' });
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] }));
  pass.dispatchWorkgroups(Math.ceil(n / 64));
  pass.end();
  enc.copyBufferToBuffer(buf, 0, read, 0, n * 4);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const got = new Uint32Array(read.getMappedRange().slice(0));
  read.unmap();
  buf.destroy();
  read.destroy();
  gpu.throwIfFailed();
  const kernelMs = performance.now() - t0;
  let bad = -1;
  for (let i = 0; i < n; i++) if (got[i] !== ((i * i + 7) >>> 0)) { bad = i; break; }
  const kernelOk = bad < 0;
  lines.push(kernelOk
    ? `check kernel ok: ${n} elements verified (${kernelMs.toFixed(0)} ms including compile)`
    : `check kernel FAILED: element ${bad} = ${got[bad]}, expected ${(bad * bad + 7) >>> 0}`);
  return { gpu, kernelOk, kernelMs, lines };
}
