// Where the host time of one small op goes: records `n` calls of a tiny op without waiting, then
// waits once, and prints the per-call recording time (JavaScript + Dawn calls) next to the GPU
// drain time. Layers are timed separately: a bare Dawn dispatch (bind group + dispatch), one
// through rt().dispatch, and whole ops (elementwise add, conv dgrad/wgrad of FCOS cls @4).
// Run: npx tsx scripts/dev/op-overhead.ts [n]   (add --cpu-prof to node via NODE_OPTIONS for a profile)
import { add, init, randn } from '../../engine';
import { type KernelDef, rt } from '../../runtime/runtime';
import { conv2dDgradRaw, conv2dWgradRaw } from '../../engine/ops/conv';
import { convGeometry } from '../../kernels/conv/geometry';
import { loadavg } from 'node:os';

const n = Number(process.argv[2] ?? 400);
await init();
const r = rt();

async function measure(name: string, fn: () => void): Promise<void> {
  for (let i = 0; i < 20; i++) fn(); // warm-up: pipelines, pool
  await r.sync();
  const rec: number[] = [];
  const tot: number[] = [];
  for (let round = 0; round < 5; round++) {
    await r.sync();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    const t1 = performance.now();
    await r.sync();
    const t2 = performance.now();
    rec.push(((t1 - t0) * 1000) / n);
    tot.push(((t2 - t0) * 1000) / n);
  }
  rec.sort((a, b) => a - b);
  tot.sort((a, b) => a - b);
  console.log(`${name.padEnd(44)} record ${rec[2]!.toFixed(1).padStart(6)} µs/call   record+drain ${tot[2]!.toFixed(1).padStart(6)} µs/call`);
}

const scratch = r.pool.acquire(256, GPUBufferUsage.STORAGE, 'dev.scratch');
const emptyKernel: KernelDef = {
  key: 'dev.empty',
  bindings: ['rw'],
  code: '@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n@compute @workgroup_size(1) fn main() { _ = &x; }',
};
const emptyU: KernelDef = {
  key: 'dev.empty_u',
  bindings: ['rw'],
  uniform: true,
  code: '@group(0) @binding(0) var<storage, read_write> x: array<f32>;\nstruct P { a: u32 }\n@group(0) @binding(1) var<uniform> p: P;\n@compute @workgroup_size(1) fn main() { _ = &x; _ = p.a; }',
};

// Bare Dawn: one pipeline, a new bind group per dispatch, one encoder per 96 dispatches.
r.dispatch(emptyKernel, [scratch], undefined, 1);
await r.sync();
const pipe = r.device.createComputePipeline({
  layout: 'auto',
  compute: { module: r.device.createShaderModule({ code: emptyKernel.code }), entryPoint: 'main' },
});
const layout = pipe.getBindGroupLayout(0);
/** A bare Dawn dispatch loop (one encoder per 96 dispatches, as the runtime batches), with a new
 *  bind group per dispatch or one made once. */
async function bareDawn(name: string, reuseBindGroup: boolean): Promise<void> {
  const makeGroup = () => r.device.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer: scratch } }] });
  const fixed = makeGroup();
  let enc: GPUCommandEncoder | undefined;
  let pass: GPUComputePassEncoder | undefined;
  let count = 0;
  const submit = () => {
    pass!.end();
    r.device.queue.submit([enc!.finish()]);
    enc = undefined;
    pass = undefined;
    count = 0;
  };
  await measure(name, () => {
    enc ??= r.device.createCommandEncoder();
    pass ??= enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, reuseBindGroup ? fixed : makeGroup());
    pass.dispatchWorkgroups(1);
    if (++count === 96) submit();
  });
  if (pass) submit();
}
await bareDawn('bare Dawn: createBindGroup + dispatch', false);
await bareDawn('bare Dawn: dispatch, bind group reused', true);
await measure('rt().dispatch, no uniform', () => r.dispatch(emptyKernel, [scratch], undefined, 1));
const u = new Uint32Array(4);
await measure('rt().dispatch, uniform', () => r.dispatch(emptyU, [scratch], u, 1));

const a = randn([64], 1);
const b = randn([64], 2);
await measure('add([64], [64]) + dispose', () => add(a, b).dispose());
const g = convGeometry('fcos cls @4', [2, 128, 4, 4], [1, 128, 3, 3], { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 });
const x = randn([2, 128, 4, 4], 3);
const w = randn([1, 128, 3, 3], 4);
const dy = randn([2, 1, 4, 4], 5);
await measure('conv2dDgradRaw FCOS cls @4 + dispose', () => conv2dDgradRaw(g, dy, w).dispose());
await measure('conv2dWgradRaw FCOS cls @4 + dispose', () => conv2dWgradRaw(g, dy, x).dispose());
console.log(`load ${loadavg()[0]!.toFixed(1)}; ${JSON.stringify(r.stats())}`);
