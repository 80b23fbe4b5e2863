// Smoke test: the GPU is reachable, a real WGSL kernel runs, and every output element is written
// with the value a float64 reference gives (outputs are poisoned beforehand).
import { describe, expect, it } from 'vitest';
import { getGpu } from '../runtime/device';
import { Rng, expectClose, runWgsl, testSeed } from './util';

describe('smoke', () => {
  it('acquires a device with the raised limits', async () => {
    const gpu = await getGpu();
    expect(gpu.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(8);
    expect(gpu.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
  });

  it('runs a WGSL kernel: y = a*x + b*sin(x) over an odd length', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const n = 1000 + rng.int(0, 77);
    const x = Float32Array.from(rng.uniformArray(n, -3, 3));
    const a = 1.5;
    const b = -0.25;
    const code = /* wgsl */ `
      @group(0) @binding(0) var<storage, read> x: array<f32>;
      @group(0) @binding(1) var<storage, read_write> y: array<f32>;
      struct Params { n: u32, a: f32, b: f32 }
      @group(0) @binding(2) var<uniform> p: Params;
      @compute @workgroup_size(64)
      fn main(@builtin(global_invocation_id) gid: vec3u) {
        let i = gid.x;
        if (i >= p.n) { return; }
        y[i] = p.a * x[i] + p.b * sin(x[i]);
      }`;
    const params = new ArrayBuffer(16);
    new Uint32Array(params, 0, 1)[0] = n;
    new Float32Array(params, 4, 2).set([a, b]);
    const [y] = await runWgsl({
      code,
      label: 'smoke.axpb',
      inputs: [x],
      outputs: [{ length: n }],
      uniforms: new Uint8Array(params),
      workgroups: [Math.ceil(n / 64)],
    });
    const ref = Array.from(x, (v) => a * v + b * Math.sin(v));
    expectClose(y!, ref, { atol: 1e-5, rtol: 1e-5, what: `axpb (seed ${seed}, n ${n})` });
  });

  it('reports a WGSL compile error with the kernel name and line', async () => {
    const code = 'fn main() {\n  let x: f32 = undefined_thing;\n}';
    await expect(runWgsl({ code, label: 'broken-kernel', outputs: [{ length: 1 }], workgroups: [1] })).rejects.toThrow(
      /broken-kernel[\s\S]*line 2/,
    );
  });
});
