// What compiling a first inference's kernels costs in Chromium (WebGPU on SwiftShader): records the
// KernelDefs that one demo-model inference at SIZE² dispatches in Node, then in a Chromium page
// creates each pipeline with createComputePipelineAsync, one at a time (per-kernel times, slowest
// first) and all at once (what the runtime's background compilation allows). Node's kernel choices
// (lavapipe) may differ from the page's on SwiftShader. Each round appends a comment to the WGSL
// so that no cache answers. Times depend on the load on the machine: compare within one run.
// Run: npx tsx scripts/dev/browser-compile-times.mts [SIZE=128] [LIMIT=all]
import { chromium } from 'playwright-core';
import { init, rt, type KernelDef } from '../../runtime/runtime';
import { loadConfig } from '../../models/config/config';
import { loadModelForInference, predictGray, predictorOptionsFromConfig } from '../../pipeline/engine/predictor';
import { synthImages } from '../../pipeline/data/synth/dataset';
// @ts-expect-error -- a plain .mjs script without types
import { serveWeb } from '../../web/build.mjs';

const size = Number(process.argv[2] ?? 128);
const limit = Number(process.argv[3] ?? Infinity);
await init();
const defs = new Map<string, KernelDef>();
const runtime = rt();
const dispatch = runtime.dispatch.bind(runtime);
runtime.dispatch = (def, ...rest) => (defs.set(def.key, def), dispatch(def, ...rest));
const cfg = loadConfig('configs/synth_centermask_lite_V_19_slim_scratch.yaml', ['INPUT.MIN_SIZE_TEST', String(size)]);
const model = await loadModelForInference(cfg, 'models/zoo/centermask_lite_V_19_slim_synth.safetensors');
const im = synthImages({ seed: 11, trainImages: 0, testImages: 1, width: size, height: size }, 'test').next().value!;
await predictGray(model, im.pixels, size, size, predictorOptionsFromConfig(cfg, [1, 2, 3], false));
const list = [...defs.values()].slice(0, limit).map((d) => ({ key: d.key, code: d.code, bindings: d.bindings, uniform: !!d.uniform, entryPoint: d.entryPoint ?? 'main' }));

const server = await serveWeb({ port: 0 });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'],
});
try {
  const page = await browser.newPage();
  await page.addInitScript('globalThis.__name = (f) => f'); // tsx's helper for named functions
  await page.goto(`${server.url}style.css`); // any page of the origin: WebGPU needs a secure context
  const out = await page.evaluate(async (list) => {
    const adapter = (await navigator.gpu.requestAdapter())!;
    const device = await adapter.requestDevice({
      requiredFeatures: [...adapter.features] as GPUFeatureName[],
      requiredLimits: { maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage },
    });
    const compile = (d: (typeof list)[number], nonce: string) => {
      const entries: GPUBindGroupLayoutEntry[] = d.bindings.map((k, i) => ({ binding: i, visibility: GPUShaderStage.COMPUTE, buffer: { type: k === 'read' ? 'read-only-storage' : 'storage' } }));
      if (d.uniform) entries.push({ binding: d.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } });
      const layout = device.createPipelineLayout({ bindGroupLayouts: [device.createBindGroupLayout({ entries })] });
      const module = device.createShaderModule({ code: `${d.code}\n// ${nonce}\n` });
      return device.createComputePipelineAsync({ layout, compute: { module, entryPoint: d.entryPoint } });
    };
    const per: [string, number][] = [];
    let t = performance.now();
    for (const d of list) {
      const t0 = performance.now();
      await compile(d, 'one');
      per.push([d.key, performance.now() - t0]);
    }
    const sequential = performance.now() - t;
    t = performance.now();
    await Promise.all(list.map((d) => compile(d, 'all')));
    return { adapter: adapter.info?.description || adapter.info?.architecture, per: per.sort((a, b) => b[1] - a[1]), sequential, concurrent: performance.now() - t };
  }, list);
  console.log(`${list.length} kernels of one ${size}x${size} inference, Chromium adapter ${out.adapter}: one at a time ${(out.sequential / 1000).toFixed(1)} s, all at once ${(out.concurrent / 1000).toFixed(1)} s`);
  for (const [key, ms] of out.per.slice(0, 25)) console.log(`${ms.toFixed(0).padStart(7)} ms  ${key.slice(0, 140)}`);
} finally {
  await browser.close();
  await server.close();
}
