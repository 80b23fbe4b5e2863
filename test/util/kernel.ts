// A one-line way to run a WGSL compute kernel on small inputs in a test:
//   const [out] = await runWgsl({ code, inputs: [a, b], outputs: [{ length: n }], workgroups: [k] });
// Bindings in group 0: inputs first (read-only storage), then outputs (read_write storage), then
// the optional uniform block. Outputs are poisoned before the run (NaN for f32, 0xDEADBEEF for
// integers) so that an element the kernel forgot to write fails the comparison.
import { compileComputePipeline, getGpu } from '../../runtime/device';

export type ElemType = 'f32' | 'u32' | 'i32';
export type HostArray = Float32Array | Uint32Array | Int32Array;

export interface RunWgslSpec {
  code: string;
  label?: string;
  inputs?: HostArray[];
  outputs: { length: number; type?: ElemType }[];
  uniforms?: ArrayBufferView;
  workgroups: [number, number?, number?];
  entryPoint?: string;
}

export const POISON_U32 = 0xdeadbeef;

function poisoned(length: number, type: ElemType): HostArray {
  if (type === 'f32') return new Float32Array(length).fill(NaN);
  if (type === 'u32') return new Uint32Array(length).fill(POISON_U32);
  return new Int32Array(length).fill(POISON_U32 | 0);
}

export async function runWgsl(spec: RunWgslSpec): Promise<HostArray[]> {
  const gpu = await getGpu();
  const { device } = gpu;
  const label = spec.label ?? 'test-kernel';
  const pipeline = await compileComputePipeline(device, label, spec.code, spec.entryPoint ?? 'main');
  const buffers: GPUBuffer[] = [];
  const make = (data: HostArray | ArrayBufferView, usage: number, name: string) => {
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    const buf = device.createBuffer({ label: `${label}.${name}`, size, usage, mappedAtCreation: true });
    new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buf.unmap();
    buffers.push(buf);
    return buf;
  };
  const entries: GPUBindGroupEntry[] = [];
  let binding = 0;
  for (const [i, input] of (spec.inputs ?? []).entries()) {
    entries.push({ binding: binding++, resource: { buffer: make(input, GPUBufferUsage.STORAGE, `in${i}`) } });
  }
  const outs = spec.outputs.map((o, i) => {
    const type = o.type ?? 'f32';
    const init = poisoned(o.length, type);
    const buf = make(init, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, `out${i}`);
    entries.push({ binding: binding++, resource: { buffer: buf } });
    return { buf, type, length: o.length };
  });
  if (spec.uniforms) {
    entries.push({ binding: binding++, resource: { buffer: make(spec.uniforms, GPUBufferUsage.UNIFORM, 'params') } });
  }
  const bindGroup = device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
  const encoder = device.createCommandEncoder({ label });
  const pass = encoder.beginComputePass({ label });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  const [x, y = 1, z = 1] = spec.workgroups;
  pass.dispatchWorkgroups(x, y, z);
  pass.end();
  const staging = outs.map((o, i) => {
    const size = o.buf.size;
    const s = device.createBuffer({ label: `${label}.readback${i}`, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(o.buf, 0, s, 0, size);
    buffers.push(s);
    return s;
  });
  device.queue.submit([encoder.finish()]);
  const results = await Promise.all(
    staging.map(async (s, i) => {
      await s.mapAsync(GPUMapMode.READ);
      const o = outs[i]!;
      const bytes = s.getMappedRange().slice(0, o.length * 4);
      s.unmap();
      return o.type === 'f32' ? new Float32Array(bytes) : o.type === 'u32' ? new Uint32Array(bytes) : new Int32Array(bytes);
    }),
  );
  gpu.throwIfFailed();
  for (const b of buffers) b.destroy();
  return results;
}
