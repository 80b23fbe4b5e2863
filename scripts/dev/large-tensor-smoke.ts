// Smoke run of tensors larger than one storage binding (kernels/large.ts) at the size that used to
// fail: V-39's stage-2 concat at 704×520, batch 2, [2, 768, 130, 176] f32 = 140,574,720 bytes, over
// the 128 MiB (134,217,728-byte) default binding limit. Builds it with cat (split copies), runs the
// 1×1 conv 768→256 that follows it (forward, dgrad, wgrad: split over images), a FrozenBN-style
// scale/shift (split elementwise), BatchNorm in training mode and a channel sum (split reduction),
// and checks a few values against a float64 computation on the host. Prints each step's time.
// Run: npx tsx scripts/dev/large-tensor-smoke.ts [limitBytes]   (limit: lower the binding limit,
// a power of two, to run the split paths at smaller sizes too)
import { backward, batchNorm2d, cat, conv2d, fromArray, init, mul, randn, sum } from '../../engine';
import { rt } from '../../runtime/runtime';

await init();
const r = rt();
if (process.argv[2]) r.setBindingLimitForTests(Number(process.argv[2]));
console.log(`binding limit ${r.bindingLimit} bytes, maxBufferSize ${r.gpu.limits.maxBufferSize} bytes, adapter ${r.gpu.adapter.description || r.gpu.adapter.vendor}`);

const H = 130;
const W = 176;
let t0 = performance.now();
async function step(name: string, fn: () => unknown): Promise<void> {
  t0 = performance.now();
  fn();
  await r.sync();
  console.log(`${name.padEnd(48)} ${(performance.now() - t0).toFixed(0).padStart(7)} ms`);
}

let a!: ReturnType<typeof randn>;
let b!: ReturnType<typeof randn>;
let x!: ReturnType<typeof randn>;
await step('randn [2,512,130,176] and [2,256,130,176]', () => {
  a = randn([2, 512, H, W], 1);
  b = randn([2, 256, H, W], 2);
});
await step('cat -> [2,768,130,176] (140,574,720 bytes)', () => {
  x = cat([a, b], 1);
});
console.log(`  x: [${x.shape}], ${x.numel * 4} bytes, buffer ${x.storage.buffer.size} bytes`);
x.requiresGrad = true;
const w = randn([256, 768, 1, 1], 3, 0, 0.05);
w.requiresGrad = true;
let y!: ReturnType<typeof conv2d>;
await step('conv2d 1x1 768->256 forward', () => {
  y = conv2d(x, w);
});
await step('conv2d backward (dgrad 256->768, wgrad)', () => {
  backward(sum(mul(y, y)));
});
const scale = fromArray(Array.from({ length: 768 }, (_, i) => 1 + i / 768), [768, 1, 1]);
let z!: ReturnType<typeof mul>;
await step('x * scale[c] (FrozenBN-style, elementwise)', () => {
  z = mul(x.detach(), scale);
});
let bn!: ReturnType<typeof batchNorm2d>;
await step('batchNorm2d training forward on x', () => {
  bn = batchNorm2d(x.detach(), { training: true });
});
let cs!: ReturnType<typeof sum>;
await step('sum over [0,2,3] of x', () => {
  cs = sum(x.detach(), [0, 2, 3]);
});

// Checks against the host: x's values at a few places, y = w·x at one pixel, the channel sum of
// one channel, z and the BN output finite, dx = 2 wᵀ y at one pixel.
const xs = await x.data();
const ys = await y.data();
const ws = await w.data();
const hw = H * W;
const at = (n: number, c: number, j: number) => (n * 768 + c) * hw + j;
const j = 77 * W + 91;
let ref = 0;
for (let c = 0; c < 768; c++) ref += ws[5 * 768 + c]! * xs[at(1, c, j)]!;
const got = ys[(1 * 256 + 5) * hw + j]!;
console.log(`y[1,5,77,91] = ${got.toFixed(6)}, float64 ${ref.toFixed(6)}, |diff| ${Math.abs(got - ref).toExponential(2)}`);
let chan = 0;
for (let n = 0; n < 2; n++) for (let q = 0; q < hw; q++) chan += xs[at(n, 700, q)]!;
console.log(`sum x[:,700] = ${(await cs.data())[700]!.toFixed(3)}, float64 ${chan.toFixed(3)}`);
const gx = await x.grad!.data();
let dref = 0;
for (let o = 0; o < 256; o++) dref += 2 * ws[o * 768 + 600]! * ys[(0 * 256 + o) * hw + j]!;
console.log(`dx[0,600,77,91] = ${gx[at(0, 600, j)]!.toFixed(6)}, float64 ${dref.toFixed(6)}`);
const zs = await z.data();
console.log(`z[1,767,77,91] = ${zs[at(1, 767, j)]!.toFixed(6)}, expected ${(xs[at(1, 767, j)]! * (1 + 767 / 768)).toFixed(6)}`);
const bs = await bn.data();
let finite = true;
for (let i = 0; i < bs.length; i += 4099) finite &&= Number.isFinite(bs[i]!);
console.log(`batchNorm2d output finite (sampled): ${finite}; grad w finite: ${Number.isFinite((await w.grad!.data())[0]!)}`);
