// Diagnostic for the CenterMask training-gradient fixture (test/models/centermask-train.fixture):
// where do two conv-kernel choices' training gradients part ways, and why?
//   npx tsx scripts/dev/grad-diff.ts [V39|V19slim] [--mode ab|single|tie|kernels] [--a ALGO] [--b ALGO]
//                                    [--direct REGEX] [--no-read] [--sync] [--pass-relu N:I] [--cancel W] [--top N]
// ALGO (per Conv2d module, default A direct, B auto): auto or a conv kernel (kernels/conv/chooser.ts:
//   direct, packed-gemm = gemm2, subgroup-gemm = gemm3, ...), or 'gemm2+fc' (matvec for the eSE fc,
//   packed-gemm for the rest: the default before subgroup-gemm); --direct REGEX puts the matching
//   modules of B on direct (bisection).
// --mode ab (default): two training forward+backward passes in one process, A then B. The graph
//   is the same in both, so nodes are compared by index: each node's forward output and the
//   gradient arriving at it (max |A - B| relative to max |A|), in backward order, then decision
//   flips (ReLU inputs on different sides of 0; max-pool in/out) and parameter gradients.
// --mode single: B only (stored gradients vs the oracle); --no-read skips the forward readbacks;
//   --pass-relu NODE:INDEX lets the gradient through one ReLU element (node index from --mode ab).
// --mode tie [--index I]: the ReLU near-tie that --mode ab found behind the FPN-gradient difference
//   (FCOS bbox tower, 2nd GN -> ReLU, level p3, flat index I, default 42115 = channel 32, y 28,
//   x 35): that pre-ReLU value in float32 from runs A and B, and recomputed in float64 from each
//   run's p3 and from the oracle's stored p3 (fixture features.safetensors fpn.p3).
// --mode ties: every element of both FCOS towers' GN outputs at p3..p7 whose sign (= ReLU
//   decision) differs between run B's float32 and float64 recomputed from the oracle's stored pX.
// --mode kernels: one pass; at every conv2d node the forward, grad input and grad weight are
//   recomputed with the direct kernels on exactly the inputs the default kernels saw.
// What it found (V39): the packed-gemm (+ matvec) kernels agree with direct to <= 7e-6 of max-abs
// on every conv of the real graph (dgrad bit-identical); the 1.3e-3 on fpn_output3.bias and 4.6e-4
// on stage5.OSA5_2.ese.fc.bias come from ONE ReLU near-tie: bbox tower GN(4) output at p3
// [32, 28, 35] is +7.1e-6 (auto: subgroup-gemm), -1.9e-6 (packed-gemm + matvec), float64 from the oracle's p3 +2.1e-6
// (GN output max-abs 4.59); --pass-relu 304:42115 on packed-gemm + matvec brings both to <= 3.5e-6.
// V19slim: fpn_output3.bias 2.5e-5 and stage5.OSA5_1.ese.fc.bias 2.3e-5 with every kernel family
// (auto, packed-gemm + matvec, direct), so not a kernel effect; --mode ties finds one tower ReLU decision at
// p3 (cls_tower.4, flat 96684) opposite to float64-from-the-oracle's-p3, but passing it changes
// nothing; --cancel gives a cancellation factor of only 2.3 for that bias sum. Cause not found.
import { readFileSync } from 'node:fs';
import { add, backward, init, rt, type Tensor } from '../../engine';
import { conv2dDgradRaw, conv2dForwardRaw, conv2dWgradRaw } from '../../engine/ops/conv';
import { mapRaw } from '../../engine/ops/elementwise';
import { contiguousCopy } from '../../engine/tensor';
import { convGeometry, type ConvGeometry } from '../../kernels/conv/geometry';
import { chooseDgrad, chooseForward, chooseWgrad } from '../../kernels/conv/chooser';
import { Conv2d } from '../../models/layers';
import { CenterMask, type GtInstances } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { readFixtureWeights } from '../../test/models/fixture-weights';
import { fixtureRoot, readTensors, relToMaxAbs } from '../../test/models/fixture-util';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const which = args.includes('V19slim') ? 'V19slim' : 'V39';
const mode = opt('--mode') ?? 'ab';
const directRe = opt('--direct') !== undefined ? new RegExp(opt('--direct')!) : undefined;
const top = Number(opt('--top') ?? 30);
const readFwd = !args.includes('--no-read');
const algoA = opt('--a') ?? 'direct';
const algoB = opt('--b') ?? 'auto';
const cfgFile = which === 'V39' ? 'configs/centermask_lite_V_39_eSE_FPN_ms_4x.yaml' : 'configs/centermask_lite_V_19_slim_eSE_FPN_ms_4x.yaml';

await init();
const root = fixtureRoot();
const cfg = loadConfig(cfgFile, ['MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3', 'MODEL.WEIGHTS', '']);
const model = new CenterMask(cfg);
model.loadStateDict(await readFixtureWeights(`${root}/${which}/weights.safetensors`), { strict: false });
model.train();
const image = (await readTensors(`${root}/input.safetensors`)).get('image')!;
const [, h, w] = image.shape as [number, number, number];
const gtj = JSON.parse(readFileSync(`${root}/gt.json`, 'utf8')) as { instances: { class: number; polygons: number[][]; box_xyxy: number[] }[] };
const gts: GtInstances = {
  boxes: Float32Array.from(gtj.instances.flatMap((i) => i.box_xyxy)),
  classes: Int32Array.from(gtj.instances.map((i) => i.class)),
  polygons: gtj.instances.map((i) => i.polygons),
};
const lossNames = (l: Record<string, Tensor>) => (which === 'V39' ? Object.keys(l) : ['loss_fcos_cls', 'loss_fcos_loc', 'loss_fcos_ctr']);
const paramName = new Map<Tensor, string>(model.namedParameters().map(([n, p]) => [p, n]));
const convModules = model.namedModules().filter((e): e is [string, Conv2d] => e[1] instanceof Conv2d);

async function forwardLoss(): Promise<{ losses: Record<string, Tensor>; total: Tensor }> {
  const losses: Record<string, Tensor> = await model.losses([{ image: image.data as Float32Array, height: h, width: w, origHeight: h, origWidth: w }], [gts]);
  return { losses, total: lossNames(losses).map((n) => losses[n]!).reduce((a, b) => add(a, b)) };
}

/** Graph nodes in forward order (inputs before consumers). */
function graphOrder(root2: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>([root2]);
  const stack: [Tensor, number][] = [[root2, 0]];
  while (stack.length) {
    const e = stack[stack.length - 1]!;
    const ins = e[0].gradFn?.inputs ?? [];
    if (e[1] < ins.length) {
      const x = ins[e[1]++]!;
      if (x.requiresGrad && !seen.has(x)) {
        seen.add(x);
        stack.push([x, 0]);
      }
    } else order.push(stack.pop()![0]);
  }
  return order;
}

const label = (t: Tensor) => {
  const p = (t.gradFn?.inputs ?? []).map((x) => paramName.get(x)).find((n) => n);
  return `${t.gradFn?.name ?? (paramName.get(t) ? 'param' : 'leaf')}[${t.shape}]${p ? ` ${p}` : ''}`;
};

async function printStoredGrads(): Promise<void> {
  const grads = await readTensors(`${root}/${which}/grads.safetensors`);
  const params = new Map(model.namedParameters());
  console.log('stored gradients vs the oracle (max err / max-abs):');
  for (const [name, ref] of grads) {
    const { rel } = relToMaxAbs((await params.get(name)!.grad!.data()) as Float32Array, ref.data as Float32Array);
    console.log(`  ${name}: ${rel.toExponential(2)}`);
  }
}

interface Run {
  labels: string[];
  names: string[];
  out: (Float32Array | null)[];
  /** Inputs of the nodes whose routing we check (relu, max_pool2d, clamps). */
  inp: (Float32Array | null)[];
  grad: (Float32Array | null)[];
  params: Map<string, Float32Array>;
}

const ROUTING = /relu|max_pool|clamp|hard|minimum|maximum|where/;

/** Per-module conv algorithm: 'auto' = the dispatcher's choice; 'gemm2+fc' = the default before
 *  gemm3 (fc kernels for the eSE fc, gemm2 for everything else); any other name = that kernel. */
function algoFor(spec: string, module: string): string | undefined {
  if (directRe?.test(module)) return 'direct';
  if (spec === 'auto') return undefined;
  if (spec === 'gemm2+fc') return /ese\.fc$/.test(module) ? 'fc' : 'gemm2';
  return spec;
}

async function runAB(spec: string, tag: string): Promise<Run> {
  for (const [n, m] of convModules) (m.opts as { algo?: string }).algo = algoFor(spec, n);
  model.zeroGrad();
  const t0 = performance.now();
  const { losses, total } = await forwardLoss();
  const order = graphOrder(total);
  const run: Run = { labels: order.map(label), names: order.map((t) => t.gradFn?.name ?? ''), out: [], inp: [], grad: [], params: new Map() };
  if (args.includes('--sync')) await rt().sync();
  for (const t of order) {
    if (!readFwd) {
      run.out.push(null);
      run.inp.push(null);
      continue;
    }
    run.out.push(t.dtype === 'f32' ? ((await t.data()) as Float32Array) : null);
    const x = t.gradFn?.inputs[0];
    run.inp.push(ROUTING.test(t.gradFn?.name ?? '') && x?.dtype === 'f32' ? ((await x.data()) as Float32Array) : null);
  }
  // --pass-relu NODE:INDEX: let the gradient through that ReLU element as if its input were > 0
  // (to test whether one flipped decision explains a difference).
  // NODE may also be GN_PARAM[@L]: the ReLU after that GN at level p(3+L) (default p3).
  const pass = opt('--pass-relu')?.split(':');
  if (pass) {
    let at = Number(pass[0]);
    if (!Number.isInteger(at)) {
      const [pname, lvl] = pass[0]!.split('@');
      const gnOut = order.filter((t) => t.gradFn?.name === 'groupNorm' && t.gradFn.inputs.some((x) => paramName.get(x) === pname)).sort((a, b) => b.numel - a.numel)[Number(lvl ?? 0)]; // by size: p3 first
      at = order.findIndex((t) => t.gradFn?.name === 'relu' && t.gradFn.inputs[0] === gnOut);
    }
    const node = order[at]?.gradFn;
    if (node?.name !== 'relu') throw new Error(`--pass-relu: node ${pass[0]} is ${node?.name}, not relu`);
    const orig = node.backward!;
    node.backward = (g: Tensor) => [mapRaw('pass_one', `select(x, y, i == ${Number(pass[1])}u)`, [orig(g)[0]!, g], g.shape, 'f32', 'f32')];
    console.log(`passing the gradient through element ${pass[1]} of ReLU node ${at} ${run.labels[at]}`);
  }
  const cancelIdx = order.findIndex((t) => t.gradFn?.name.startsWith('conv2d') && paramName.get(t.gradFn.inputs[1]!) === opt('--cancel'));
  const caps = new Map<number, Tensor>();
  order.forEach((t, i) => {
    const node = t.gradFn;
    if (!node?.backward) return;
    const orig = node.backward;
    node.backward = (g: Tensor) => {
      caps.set(i, contiguousCopy(g).keep());
      return orig(g);
    };
  });
  const t1 = performance.now();
  backward(total);
  const vals = await Promise.all(lossNames(losses).map(async (n) => `${n} ${await losses[n]!.item()}`));
  console.log(`run ${tag}: ${order.length} nodes, forward ${((t1 - t0) / 1000).toFixed(0)} s, backward ${((performance.now() - t1) / 1000).toFixed(0)} s; ${vals.join(', ')}`);
  for (let i = 0; i < order.length; i++) {
    const c = caps.get(i);
    run.grad.push(c ? ((await c.data()) as Float32Array) : null);
    c?.dispose();
  }
  for (const [n, p] of model.namedParameters()) if (p.grad) run.params.set(n, (await p.grad.data()) as Float32Array);
  // --cancel CONV_WEIGHT: how much the bias gradient of that conv (a sum of dL/dy over pixels)
  // cancels: max_c Σ|dL/dy| / max_c |Σ dL/dy| multiplies the per-element relative rounding error.
  const cancelOf = opt('--cancel');
  if (cancelOf) {
    const i = cancelIdx;
    const g = run.grad[i]!;
    const [, C, H, W] = order[i]!.shape as number[];
    let absMax = 0;
    let sumMax = 0;
    for (let c = 0; c < C!; c++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < H! * W!; k++) (s += g[c * H! * W! + k]!), (a += Math.abs(g[c * H! * W! + k]!));
      absMax = Math.max(absMax, a);
      sumMax = Math.max(sumMax, Math.abs(s));
    }
    console.log(`${cancelOf}: bias gradient max_c |sum| ${sumMax.toExponential(3)}, max_c sum|.| ${absMax.toExponential(3)}: cancellation factor ${(absMax / sumMax).toFixed(1)}`);
  }
  await printStoredGrads();
  return run;
}

function rel(a: Float32Array | null, b: Float32Array | null): number {
  if (!a || !b || a.length !== b.length) return NaN;
  return relToMaxAbs(b, a).rel;
}

async function modeAB(): Promise<void> {
  const A = await runAB(algoA, `A (${algoA})`);
  const B = await runAB(algoB, `B (${directRe ? `direct for /${directRe.source}/, else ` : ''}${algoB})`);
  if (A.names.join() !== B.names.join()) throw new Error('the two runs built different graphs: compare by index is meaningless');
  const n = A.names.length;
  // Backward order: from the loss towards the input. Print every node whose incoming-gradient
  // discrepancy jumps by 10x over the worst seen so far (downstream in backward order).
  console.log('\nbackward order: nodes where the incoming-gradient discrepancy reaches a new high (x10 steps):');
  let worst = 1e-7;
  for (let i = n - 1; i >= 0; i--) {
    const rg = rel(A.grad[i]!, B.grad[i]!);
    if (rg > worst * 10 || (rg > 1e-5 && rg > worst * 2)) {
      console.log(`  node ${i} ${A.labels[i]}: grad in ${rg.toExponential(2)}, fwd out ${rel(A.out[i]!, B.out[i]!).toExponential(2)}`);
      worst = rg;
    }
  }
  console.log('\nrouting decisions that differ between A and B (input within which margin of the decision):');
  for (let i = 0; i < n; i++) {
    const a = A.inp[i];
    const b = B.inp[i];
    if (!a || !b || a.length !== b.length) continue;
    const name = A.names[i]!;
    const thresholds = /relu6|hard/.test(name) ? [0, 6, -3, 3] : [0];
    if (/relu|hard|clamp/.test(name)) {
      const flips: string[] = [];
      for (let k = 0; k < a.length; k++) {
        for (const th of thresholds) if ((a[k]! > th) !== (b[k]! > th)) flips.push(`[${k}] A ${a[k]} B ${b[k]} (vs ${th})`);
      }
      if (flips.length) console.log(`  node ${i} ${A.labels[i]}: ${flips.length} flips: ${flips.slice(0, 6).join('; ')}`);
    }
  }
  // Max-pool: an argmax flip shows as an output that differs by more than the inputs do.
  for (let i = 0; i < n; i++) {
    if (!/max_pool/.test(A.names[i]!)) continue;
    const ro = rel(A.out[i]!, B.out[i]!);
    const ri = rel(A.inp[i]!, B.inp[i]!);
    console.log(`  node ${i} ${A.labels[i]}: input ${ri.toExponential(2)}, output ${ro.toExponential(2)}`);
  }
  console.log(`\nlargest incoming-gradient discrepancies (top ${top}):`);
  const rows = A.grad.map((g, i) => ({ i, r: rel(g, B.grad[i]!) })).filter((r) => Number.isFinite(r.r));
  rows.sort((x, y) => y.r - x.r);
  for (const { i, r } of rows.slice(0, top)) console.log(`  node ${i} ${A.labels[i]}: grad in ${r.toExponential(2)}, fwd out ${rel(A.out[i]!, B.out[i]!).toExponential(2)}`);
  console.log('\nparameter gradients, A vs B (worst 15):');
  const pr = [...A.params].map(([k, v]) => ({ k, r: rel(v, B.params.get(k) ?? null) })).sort((x, y) => y.r - x.r);
  for (const { k, r } of pr.slice(0, 15)) console.log(`  ${k}: ${r.toExponential(2)}`);
}

/** The model's convs all use padding (K-1)/2; stride follows from the output size. */
function inferGeometry(x: Tensor, wt: Tensor, y: Tensor): ConvGeometry {
  const [, C] = x.shape as number[];
  const [, Cg, KH, KW] = wt.shape as number[];
  for (const s of [1, 2]) {
    const g = convGeometry('grad-diff', x.shape, wt.shape, { stride: [s, s], padding: [(KH! - 1) / 2, (KW! - 1) / 2], dilation: [1, 1], groups: C! / Cg! });
    if (g.OH === y.shape[2] && g.OW === y.shape[3]) return g;
  }
  throw new Error(`cannot infer the geometry of conv x [${x.shape}] w [${wt.shape}] -> [${y.shape}]`);
}

async function modeKernels(): Promise<void> {
  const t0 = performance.now();
  const { losses, total } = await forwardLoss();
  const probes: { label: string; pairs: { what: string; a: Tensor; b: Tensor }[] }[] = [];
  for (const t of graphOrder(total)) {
    const node = t.gradFn;
    if (!node || (node.name !== 'conv2d' && node.name !== 'conv2d_relu') || !node.backward) continue;
    const [x, wt, b] = node.inputs as [Tensor, Tensor, Tensor | undefined];
    const relu = node.name === 'conv2d_relu';
    const geo = inferGeometry(x, wt, t);
    const kernels = `${chooseForward(geo, 'auto', [x.offset, wt.offset])}/${chooseDgrad(geo, 'auto', [wt.offset])}/${chooseWgrad(geo, 'auto')}`;
    const probe = { label: `#${probes.length} ${label(t)} x[${x.shape}] s${geo.strideH} [${kernels}]`, pairs: [] as { what: string; a: Tensor; b: Tensor }[] };
    probes.push(probe);
    probe.pairs.push({ what: 'y', a: t, b: conv2dForwardRaw(geo, x, wt, b ?? null, relu, 'direct').keep() });
    const orig = node.backward;
    node.backward = (g: Tensor) => {
      const r = orig(g);
      const gm = relu ? mapRaw('relu_mask', 'select(0.0, x, y > 0.0)', [g, t], g.shape, 'f32', 'f32') : g;
      if (r[0]) probe.pairs.push({ what: 'dx', a: contiguousCopy(r[0]).keep(), b: conv2dDgradRaw(geo, gm, wt, 'direct').keep() });
      if (r[1]) probe.pairs.push({ what: 'dw', a: contiguousCopy(r[1]).keep(), b: conv2dWgradRaw(geo, gm, x, 'direct').keep() });
      return r;
    };
  }
  const t1 = performance.now();
  backward(total);
  for (const n of lossNames(losses)) console.log(`  ${n} = ${await losses[n]!.item()}`);
  console.log(`${probes.length} conv nodes; forward ${((t1 - t0) / 1000).toFixed(0)} s, backward ${((performance.now() - t1) / 1000).toFixed(0)} s`);
  const rows: { r: number; text: string }[] = [];
  for (const p of probes) {
    const parts: string[] = [];
    for (const { what, a, b } of p.pairs) {
      const r = relToMaxAbs((await a.data()) as Float32Array, (await b.data()) as Float32Array).rel;
      parts.push(`${what} ${r.toExponential(1)}`);
      rows.push({ r, text: `${p.label} ${what}` });
    }
    console.log(`${p.label}: ${parts.join(', ')}`);
  }
  rows.sort((a, b) => b.r - a.r);
  console.log(`\nworst ${top} (default vs direct on the same inputs, of max-abs):`);
  for (const r of rows.slice(0, top)) console.log(`  ${r.r.toExponential(2)} ${r.text}`);
  await printStoredGrads();
}

if (mode === 'kernels') await modeKernels();
else if (mode === 'tie') await modeTie();
else if (mode === 'ties') await modeTies();
else if (mode === 'single') await runAB(algoB, `single (${algoB})`);
else if (mode === 'ab') await modeAB();
else throw new Error(`--mode must be ab or kernels, got ${mode}`);

/** y[o] = conv3x3 pad 1 (+ bias) of x [C, H, W] in float64, for the output channels `outs`. */
function conv3x3F64(x: Float64Array, C: number, H: number, W: number, wt: Float32Array, b: Float32Array, outs: number[]): Float64Array[] {
  return outs.map((o) => {
    const y = new Float64Array(H * W).fill(b[o]!);
    for (let c = 0; c < C; c++) {
      for (let kh = 0; kh < 3; kh++) {
        for (let kw = 0; kw < 3; kw++) {
          const wv = wt[((o * C + c) * 3 + kh) * 3 + kw]!;
          for (let i = 0; i < H; i++) {
            const ih = i + kh - 1;
            if (ih < 0 || ih >= H) continue;
            for (let j = 0; j < W; j++) {
              const iw = j + kw - 1;
              if (iw >= 0 && iw < W) y[i * W + j]! += wv * x[(c * H + ih) * W + iw]!;
            }
          }
        }
      }
    }
    return y;
  });
}

/** GroupNorm (eps 1e-5, affine) in float64 of the channels `chans` (one whole group). */
function groupNormF64(planes: Float64Array[], chans: number[], gamma: Float32Array, beta: Float32Array): Float64Array[] {
  let sum = 0;
  let n = 0;
  for (const p of planes) for (const v of p) (sum += v), n++;
  const mean = sum / n;
  let ss = 0;
  for (const p of planes) for (const v of p) ss += (v - mean) ** 2;
  const inv = 1 / Math.sqrt(ss / n + 1e-5);
  return planes.map((p, k) => p.map((v) => (v - mean) * inv * gamma[chans[k]!]! + beta[chans[k]!]!));
}

async function modeTie(): Promise<void> {
  const index = Number(opt('--index') ?? 42115);
  const params = new Map(model.namedParameters());
  const P = async (n: string) => (await params.get(`proposal_generator.fcos_head.bbox_tower.${n}`)!.data()) as Float32Array;
  const [w0, b0, g1, be1, w3, b3, g4, be4] = await Promise.all(['0.weight', '0.bias', '1.weight', '1.bias', '3.weight', '3.bias', '4.weight', '4.bias'].map(P));
  const [C, H, W] = [128, 32, 40];
  const c = Math.floor(index / (H * W));
  const yx = index % (H * W);
  const gsz = C / 32;
  const chans = Array.from({ length: gsz }, (_, k) => Math.floor(c / gsz) * gsz + k);
  const f64 = (p3: Float32Array | Float64Array): number => {
    const x = Float64Array.from(p3);
    const y0 = conv3x3F64(x, C, H, W, w0, b0, Array.from({ length: C }, (_, o) => o));
    const a = new Float64Array(C * H * W);
    for (let g = 0; g < 32; g++) {
      const cs = Array.from({ length: gsz }, (_, k) => g * gsz + k);
      groupNormF64(cs.map((o) => y0[o]!), cs, g1, be1).forEach((p, k) => a.set(p.map((v) => Math.max(v, 0)), cs[k]! * H * W));
    }
    const y3 = conv3x3F64(a, C, H, W, w3, b3, chans);
    return groupNormF64(y3, chans, g4, be4)[chans.indexOf(c)]![yx]!;
  };
  const oracleP3 = (await readTensors(`${root}/${which}/features.safetensors`)).get('fpn.p3')!.data as Float32Array;
  console.log(`bbox tower GN(4) output at p3 [${c}, ${Math.floor(yx / W)}, ${yx % W}] (flat ${index}):`);
  console.log(`  float64 from the oracle's p3: ${f64(oracleP3)}`);
  for (const spec of [algoA, algoB]) {
    for (const [n, m] of convModules) (m.opts as { algo?: string }).algo = algoFor(spec, n);
    const { total } = await forwardLoss();
    const order = graphOrder(total);
    const conv0 = order.find((t) => t.gradFn?.name === 'conv2d' && t.gradFn.inputs[1] === params.get('proposal_generator.fcos_head.bbox_tower.0.weight') && t.shape[2] === H && t.shape[3] === W)!;
    const gn4 = order.find((t) => t.gradFn?.name === 'groupNorm' && t.gradFn.inputs.includes(params.get('proposal_generator.fcos_head.bbox_tower.4.weight')!) && t.shape[2] === H && t.shape[3] === W)!;
    const p3 = (await conv0.gradFn!.inputs[0]!.data()) as Float32Array;
    const v32 = ((await gn4.data()) as Float32Array)[index]!;
    const gn4All = (await gn4.data()) as Float32Array;
    let maxAbs = 0;
    for (const v of gn4All) maxAbs = Math.max(maxAbs, Math.abs(v));
    console.log(`  ${spec}: float32 in the model ${v32} (GN output max-abs ${maxAbs.toFixed(3)}); float64 from this run's p3 ${f64(p3)}; p3 vs oracle ${relToMaxAbs(p3, oracleP3).rel.toExponential(2)} of max-abs`);
  }
}

/** Both FCOS towers at p3 in float64 from `p3`: the GN(1) and GN(4) outputs (pre-ReLU). */
async function towersF64(p3: Float32Array, C: number, H: number, W: number): Promise<Map<string, Float64Array>> {
  const params = new Map(model.namedParameters());
  const out = new Map<string, Float64Array>();
  const all = Array.from({ length: C }, (_, o) => o);
  const gsz = C / 32;
  const gn = (planes: Float64Array[], gamma: Float32Array, beta: Float32Array) => {
    const y = new Float64Array(C * H * W);
    for (let g = 0; g < 32; g++) {
      const cs = Array.from({ length: gsz }, (_, k) => g * gsz + k);
      groupNormF64(cs.map((o) => planes[o]!), cs, gamma, beta).forEach((pl, k) => y.set(pl, cs[k]! * H * W));
    }
    return y;
  };
  for (const tower of ['cls_tower', 'bbox_tower']) {
    const P = async (n: string) => (await params.get(`proposal_generator.fcos_head.${tower}.${n}`)!.data()) as Float32Array;
    const [w0, b0, g1, be1, w3, b3, g4, be4] = await Promise.all(['0.weight', '0.bias', '1.weight', '1.bias', '3.weight', '3.bias', '4.weight', '4.bias'].map(P));
    const n1 = gn(conv3x3F64(Float64Array.from(p3), C, H, W, w0, b0, all), g1!, be1!);
    const n4 = gn(conv3x3F64(n1.map((v) => Math.max(v, 0)), C, H, W, w3!, b3!, all), g4!, be4!);
    out.set(`${tower}.1`, n1);
    out.set(`${tower}.4`, n4);
  }
  return out;
}

async function modeTies(): Promise<void> {
  const params = new Map(model.namedParameters());
  const feats = await readTensors(`${root}/${which}/features.safetensors`);
  for (const [n, m] of convModules) (m.opts as { algo?: string }).algo = algoFor(algoB, n);
  const { total } = await forwardLoss();
  const order = graphOrder(total);
  for (const level of [3, 4, 5, 6, 7]) {
    const oracle = feats.get(`fpn.p${level}`)!;
    const [, C, H, W] = oracle.shape as number[];
    const ref = await towersF64(oracle.data as Float32Array, C!, H!, W!);
    for (const [key, want] of ref) {
      const gn = order.find((t) => t.gradFn?.name === 'groupNorm' && t.gradFn.inputs.includes(params.get(`proposal_generator.fcos_head.${key}.weight`)!) && t.shape[2] === H && t.shape[3] === W)!;
      const got = (await gn.data()) as Float32Array;
      let maxAbs = 0;
      for (const v of want) maxAbs = Math.max(maxAbs, Math.abs(v));
      const flips: string[] = [];
      for (let i = 0; i < got.length; i++) {
        if ((got[i]! > 0) !== (want[i]! > 0)) flips.push(`[${i}] = (${Math.floor(i / (H! * W!))}, ${Math.floor((i % (H! * W!)) / W!)}, ${i % W!}): ours ${got[i]}, float64 ${want[i]}`);
      }
      console.log(`${which} p${level} ${key} GN output (max-abs ${maxAbs.toFixed(3)}, ours vs float64 ${relToMaxAbs(got, want).rel.toExponential(2)}): ${flips.length} ReLU decisions differ${flips.length ? `: ${flips.slice(0, 8).join('; ')}` : ''}`);
    }
  }
}
