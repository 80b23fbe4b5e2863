// few-channel: convs with few output channels (O ≤ 4: the FCOS cls/ctrness and bbox heads, the
// mask predictor, the SAM conv). As GEMMs they have 1–4 rows, so any row tile is mostly padding and every input
// value is loaded for only 1–4 FMAs. These kernels instead reuse loaded inputs across taps: for
// stride 1 and dilation 1, the 4 adjacent outputs of a lane under the KW taps of one kernel row
// read KW + 3 consecutive inputs (not 4·KW), and TH output rows share their input rows.
// Values that all 8 lanes of a workgroup need (forward: weights; dgrad: the dy patch; wgrad: dy)
// are loaded once, an eighth by each lane, and handed on by subgroupBroadcast (lavapipe scalarises
// every load per lane). Needs a software adapter with 8-wide subgroups (lavapipe); groups = 1,
// stride 1, dilation 1, kernel ≤ 5×5.
//   forward  lane = (n, TH output rows, 4 output columns) × all Og channels:
//            y[n, o, oh, ow] = Σ_(c, kh, kw) W[o, c, kh, kw] · x[n, c, oh − ph + kh, ow − pw + kw]
//   dgrad    lane = one input channel × TH rows × 4 columns of dx, its O·KH·KW weights in registers,
//            the dy patch of a tile broadcast (one dispatch, no packs):
//            dx[n, c, ih, iw] = Σ_(o, kh, kw) W[o, c, kh, kw] · dy[n, o, ih + ph − kh, iw + pw − kw]
//   wgrad    dW[o, c, kh, kw] = Σ_(n, oh, ow) dy[n, o, oh, ow] · x[n, c, oh − ph + kh, ow − pw + kw],
//            rows split into chunks reduced in a fixed order (deterministic); three lane layouts:
//            O·KH ≤ 16 and ≥ 8 channels: lane = input channel, looping over rows of x (each x row
//            serves all KH kernel rows); O·KH ≤ 16 and < 8 channels: lane = (column group, channel);
//            else lane = (c, kh) × all KW taps, looping over rows of dy.
//   backward dgrad and wgrad in one dispatch (convBackwardFewChannel): on the FCOS maps of 8² and 4² both
//            are launch-bound, and one launch is cheaper than two (what conv2d's backward runs).
import { defineKernel, read, rt, rw } from '../define-kernel';
import { CONV_PARAMS, type ConvGeometry, convParams } from './geometry';
import { range } from './register-tile';
import { packWeightRows, subgroupGemmAvailable, type Tap } from './subgroup-gemm/gemm';
import { reduceSplits } from './split-k';

/** Output rows per lane in the forward kernel. */
const TH = 2;
const X = ['x', 'y', 'z', 'w'] as const;

/** The few-channel kernels handle this geometry (on an adapter where they run). */
export function fewChannelFits(g: ConvGeometry): boolean {
  return g.groups === 1 && g.O <= 4 && g.strideH === 1 && g.strideW === 1 && g.dilH === 1 && g.dilW === 1 && g.KW <= 5 && g.KH <= 5;
}

/** The few-channel kernels can run `g` here: the adapter is one where the subgroup GEMM runs
 *  (software, 8-wide subgroups) and the geometry fits. */
export function fewChannelApplicable(g: ConvGeometry): boolean {
  return subgroupGemmAvailable() && fewChannelFits(g);
}

function check(what: string, g: ConvGeometry): void {
  if (!fewChannelApplicable(g)) {
    throw new Error(`conv ${what} (few channels): needs 8-wide subgroups, groups 1, ≤ 4 output channels, stride 1, dilation 1 and a kernel ≤ 5x5; got O ${g.O}, groups ${g.groups}, stride ${g.strideH}x${g.strideW}, dilation ${g.dilH}x${g.dilW}, kernel ${g.KH}x${g.KW}`);
  }
}

const forwardKernel = defineKernel({
  name: 'conv.few-channel.fwd',
  bindings: { x: read('f32'), wp: read('vec4f'), bias: { ...read('f32'), when: (v) => v.bias }, y: rw('f32') },
  params: CONV_PARAMS,
  code: (v: { O: number; KH: number; KW: number; bias: boolean; relu: boolean }) => forwardCode(v.O, v.KH, v.KW, v.bias, v.relu),
});

function forwardCode(O: number, KH: number, KW: number, bias: boolean, relu: boolean): string {
  const SEG = KW + 3; // inputs under 4 adjacent outputs × KW taps
  const ROWS = TH + KH - 1;
  const nw = O * KH * KW;
  const wLoads = Math.ceil(nw / 32);
  const L: string[] = [];
  L.push(`enable subgroups;
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let id = i32(wid.x + wid.y * nwg.x) * 8 + i32(lane);
  let QW = (p.OW + 3) / 4;
  let QH = (p.OH + ${TH - 1}) / ${TH};
  let total = p.N * QH * QW;
  let idc = min(id, total - 1);
  let n = idc / (QH * QW);
  let rq = idc - n * QH * QW;
  let oh0 = (rq / QW) * ${TH};
  let ow0 = (rq % QW) * 4;
  let HW = p.H * p.W;
  let xb = i32(p.x_off) + n * p.C * HW;
  let WS4 = p.e0;`);
  for (let r = 0; r < ROWS; r++) L.push(`  let ih${r} = oh0 - p.ph + ${r};\n  let rok${r} = ih${r} >= 0 && ih${r} < p.H;\n  let ro${r} = select(0, ih${r} * p.W, rok${r});`);
  for (let q = 0; q < SEG; q++) L.push(`  let iw${q} = ow0 - p.pw + ${q};\n  let cok${q} = iw${q} >= 0 && iw${q} < p.W;\n  let co${q} = select(0, iw${q}, cok${q});`);
  for (let o = 0; o < O; o++) for (let r = 0; r < TH; r++) L.push(`  var acc${o}_${r} = vec4f(0.0);`);
  L.push('  for (var c = 0; c < p.C; c++) {');
  L.push('    let xc = xb + c * HW;');
  for (let j = 0; j < wLoads; j++) L.push(`    let wv${j} = wp[c * WS4 + ${j * 8} + i32(lane)];`);
  // Weight (o, kh, kw) sits in lane (e >> 2) & 7 of load e >> 5, component e & 3.
  for (let e = 0; e < nw; e++) L.push(`    let w${e} = subgroupBroadcast(wv${e >> 5}.${X[e & 3]}, ${(e >> 2) & 7}u);`);
  for (let r = 0; r < ROWS; r++) {
    L.push('    {');
    for (let q = 0; q < SEG; q++) L.push(`      let s${q} = select(0.0, x[xc + ro${r} + co${q}], rok${r} && cok${q});`);
    for (let kw = 0; kw < KW; kw++) L.push(`      let b${kw} = vec4f(s${kw}, s${kw + 1}, s${kw + 2}, s${kw + 3});`);
    // Input row r feeds output row t under kernel row kh = r − t.
    for (let t = 0; t < TH; t++) {
      const kh = r - t;
      if (kh < 0 || kh >= KH) continue;
      for (let o = 0; o < O; o++) for (let kw = 0; kw < KW; kw++) L.push(`      acc${o}_${t} = fma(vec4f(w${(o * KH + kh) * KW + kw}), b${kw}, acc${o}_${t});`);
    }
    L.push('    }');
  }
  L.push('  }');
  L.push('  if (id >= total) { return; }');
  for (let o = 0; o < O; o++) {
    L.push(`  {\n    let bv = ${bias ? `bias[p.b_off + ${o}u]` : '0.0'};`);
    for (let t = 0; t < TH; t++) {
      for (let j = 0; j < 4; j++) {
        const v = `acc${o}_${t}.${X[j]} + bv`;
        L.push(`    if (oh0 + ${t} < p.OH && ow0 + ${j} < p.OW) { y[i32(p.y_off) + ((n * p.O + ${o}) * p.OH + oh0 + ${t}) * p.OW + ow0 + ${j}] = ${relu ? `max(${v}, 0.0)` : v}; }`);
      }
    }
    L.push('  }');
  }
  L.push('}');
  return L.join('\n');
}

/** y = conv(x, w) (+ bias) (then ReLU) for ≤ 4 output channels. */
export function convForwardFewChannel(
  g: ConvGeometry,
  x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  bias: { buffer: GPUBuffer; offset: number } | null, relu: boolean,
  y: GPUBuffer, yOff: number,
): void {
  check('forward', g);
  const khw = g.KH * g.KW;
  // Weights per input channel c, in (o, kh, kw) order, rows padded to whole 8-lane vec4 loads.
  const taps: Tap[] = range(khw).map((index) => ({ oy: 0, ox: 0, index }));
  const a = packWeightRows(w, wOff, 1, g.C, g.C, g.O, taps, khw, g.C * khw, 0, 32);
  const lanes = g.N * Math.ceil(g.OH / TH) * Math.ceil(g.OW / 4);
  const params = convParams(g, { x: xOff, y: yOff, b: bias?.offset ?? 0 }, [a.K4 / 4]);
  forwardKernel.dispatch({ O: g.O, KH: g.KH, KW: g.KW, bias: !!bias, relu }, { x, wp: a.a, bias: bias?.buffer, y }, params, Math.ceil(lanes / 8));
  rt().pool.release(a.a);
}

// Uniform fields shared by the standalone and fused gradient kernels (packGradParams), so one
// body generator serves both: x_off = x, w_off = w, y_off = dy, b_off = dx; e0 = dgrad channel
// tiles, e1 = dgrad spatial tiles per workgroup, e2 = wgrad output offset, e3 = wgrad lane tiles
// per split, e4 = wgrad rows per split, e5 = dgrad workgroups (fused: wgrad's come after them).

/** WGSL function wgrad_wg(t, lane): workgroup t of the wgrad (lane = (c, kh) × all KW taps × all
 *  O channels, rows split into chunks). Reads dy (dy4 when vecDy), x; writes out. */
function wgradFn(O: number, KW: number, vecDy: boolean): string {
  const SEG = KW + 3;
  const L: string[] = [];
  L.push(`fn wgrad_wg(t: i32, lane: u32) {
  let lt = p.e3;                 // lane tiles (workgroups) per split
  let s = t / lt;
  let id = (t - s * lt) * 8 + i32(lane);
  let total = p.C * p.KH;
  let idc = min(id, total - 1);
  let c = idc / p.KH;
  let kh = idc - c * p.KH;
  let HW = p.H * p.W;
  let OHW = p.OH * p.OW;
  let row_start = s * p.e4;
  let row_end = min(row_start + p.e4, p.N * p.OH);
  // dy row o of this lane's broadcast share (lanes ≥ O load a clamped row, never used).
  let om = min(i32(lane), ${O - 1});`);
  for (let q = 0; q < SEG; q++) L.push(`  let qo${q} = ${q} - p.pw;`);
  for (let o = 0; o < O; o++) for (let kw = 0; kw < KW; kw++) L.push(`  var acc${o}_${kw} = vec4f(0.0);`);
  L.push(`  for (var r = row_start; r < row_end; r++) {
    let n = r / p.OH;
    let oh = r - n * p.OH;
    let ih = oh - p.ph + kh;
    let rok = ih >= 0 && ih < p.H;
    let xr = i32(p.x_off) + (n * p.C + c) * HW + select(0, ih * p.W, rok);
    let yr = i32(p.y_off) + (n * p.O + om) * OHW + oh * p.OW;
    for (var ow0 = 0; ow0 < p.OW; ow0 += 4) {`);
  L.push(vecDy
    ? '      let dl = dy4[(yr + ow0) >> 2u];'
    : `      let dl = vec4f(${range(4).map((j) => `select(0.0, dy[yr + min(ow0 + ${j}, p.OW - 1)], ow0 + ${j} < p.OW)`).join(', ')});`);
  for (let o = 0; o < O; o++) L.push(`      let d${o} = subgroupBroadcast(dl, ${o}u);`);
  for (let q = 0; q < SEG; q++) L.push(`      let iw${q} = ow0 + qo${q};\n      let s${q} = select(0.0, x[xr + clamp(iw${q}, 0, p.W - 1)], rok && iw${q} >= 0 && iw${q} < p.W);`);
  for (let kw = 0; kw < KW; kw++) {
    L.push(`      let b${kw} = vec4f(s${kw}, s${kw + 1}, s${kw + 2}, s${kw + 3});`);
    for (let o = 0; o < O; o++) L.push(`      acc${o}_${kw} = fma(d${o}, b${kw}, acc${o}_${kw});`);
  }
  L.push('    }\n  }');
  L.push('  if (id >= total || row_start >= p.N * p.OH) { return; }');
  L.push('  let KK = p.C * p.KH * p.KW;');
  for (let o = 0; o < O; o++) {
    for (let kw = 0; kw < KW; kw++) {
      L.push(`  out[p.e2 + (s * p.O + ${o}) * KK + (c * p.KH + kh) * p.KW + ${kw}] = dot(acc${o}_${kw}, vec4f(1.0));`);
    }
  }
  L.push('}');
  return L.join('\n');
}

/** WGSL lines shared by the x-row wgrad layouts: accumulators acc{o}_{kh}_{kw} (vec4: 4 columns). */
function xRowAccumulators(O: number, KH: number, KW: number): string[] {
  const L: string[] = [];
  for (let q = 0; q < KW + 3; q++) L.push(`  let qo${q} = ${q} - p.pw;`);
  for (let o = 0; o < O; o++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) L.push(`  var acc${o}_${kh}_${kw} = vec4f(0.0);`);
  return L;
}

/** The x segment under 4 columns at ow0 (row base xr), multiplied into every (o, kh, kw)
 *  accumulator by the dy vectors d{o}_{kh}. */
function xRowFmas(O: number, KH: number, KW: number): string[] {
  const L: string[] = [];
  for (let q = 0; q < KW + 3; q++) L.push(`      let iw${q} = ow0 + qo${q};\n      let s${q} = select(0.0, x[xr + clamp(iw${q}, 0, p.W - 1)], iw${q} >= 0 && iw${q} < p.W);`);
  for (let kw = 0; kw < KW; kw++) {
    L.push(`      let b${kw} = vec4f(s${kw}, s${kw + 1}, s${kw + 2}, s${kw + 3});`);
    for (let o = 0; o < O; o++) for (let kh = 0; kh < KH; kh++) L.push(`      acc${o}_${kh}_${kw} = fma(d${o}_${kh}, b${kw}, acc${o}_${kh}_${kw});`);
  }
  return L;
}

/** Store channel c's dW (of split s) from the accumulators. */
function xRowStore(O: number, KH: number, KW: number): string[] {
  const L = ['  let KK = p.C * p.KH * p.KW;'];
  for (let o = 0; o < O; o++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
    L.push(`  out[p.e2 + (s * p.O + ${o}) * KK + (c * p.KH + ${kh}) * p.KW + ${kw}] = dot(acc${o}_${kh}_${kw}, vec4f(1.0));`);
  }
  return L;
}

/** WGSL function wgrad_wg(t, lane) for O·KH ≤ 16 (FCOS heads, the mask predictor): lane = one
 *  input channel × all (o, kh, kw), looping over rows of x. Each x row segment is loaded once and
 *  used under all KH kernel rows (the (c, kh) lanes of wgradFn load it KH times); the O·KH dy
 *  vectors it meets are loaded by one lane each and broadcast. */
function wgradByChannelFn(O: number, KH: number, KW: number, vecDy: boolean): string {
  const dyLoads = Math.ceil((O * KH) / 8);
  const L: string[] = [];
  L.push(`fn wgrad_wg(t: i32, lane: u32) {
  let lt = p.e3;                 // lane tiles (workgroups) per split
  let s = t / lt;
  let c = (t - s * lt) * 8 + i32(lane);
  let cc = min(c, p.C - 1);
  let HW = p.H * p.W;
  let OHW = p.OH * p.OW;
  let row_start = s * p.e4;      // rows of x: (n, ih)
  let row_end = min(row_start + p.e4, p.N * p.H);
  // dy vector v = o·KH + kh is loaded by lane v % 8 (its load v / 8); spare lanes load a clamped one.`);
  for (let j = 0; j < dyLoads; j++) {
    L.push(`  let v${j} = min(${j * 8} + i32(lane), ${O * KH - 1});\n  let ol${j} = v${j} / ${KH};\n  let kl${j} = v${j} % ${KH};`);
  }
  L.push(...xRowAccumulators(O, KH, KW));
  L.push(`  for (var r = row_start; r < row_end; r++) {
    let n = r / p.H;
    let ih = r - n * p.H;
    let xr = i32(p.x_off) + (n * p.C + cc) * HW + ih * p.W;`);
  for (let j = 0; j < dyLoads; j++) {
    L.push(`    let oh${j} = ih + p.ph - kl${j};     // the dy row of load ${j}: oh = ih + ph − kh
    let rok${j} = oh${j} >= 0 && oh${j} < p.OH;
    let yr${j} = i32(p.y_off) + (n * p.O + ol${j}) * OHW + select(0, oh${j} * p.OW, rok${j});`);
  }
  L.push('    for (var ow0 = 0; ow0 < p.OW; ow0 += 4) {');
  for (let j = 0; j < dyLoads; j++) {
    L.push(vecDy
      ? `      let dl${j} = select(vec4f(0.0), dy4[(yr${j} + ow0) >> 2u], rok${j});`
      : `      let dl${j} = vec4f(${range(4).map((i) => `select(0.0, dy[yr${j} + min(ow0 + ${i}, p.OW - 1)], rok${j} && ow0 + ${i} < p.OW)`).join(', ')});`);
  }
  for (let o = 0; o < O; o++) for (let kh = 0; kh < KH; kh++) L.push(`      let d${o}_${kh} = subgroupBroadcast(dl${(o * KH + kh) >> 3}, ${(o * KH + kh) & 7}u);`);
  L.push(...xRowFmas(O, KH, KW));
  L.push('    }\n  }');
  L.push('  if (c >= p.C || row_start >= p.N * p.H) { return; }');
  L.push(...xRowStore(O, KH, KW));
  L.push('}');
  return L.join('\n');
}

/** WGSL function wgrad_wg(t, lane) for fewer than 8 input channels with O·KH ≤ 16 (the SAM conv,
 *  2 → 1): lane = (column group g, channel c) = g·CP + c (CP = C rounded up to a power of two),
 *  looping over rows of x with each lane taking every (8 / CP)-th group of 4 columns, so all 8 lanes
 *  work where per-channel lanes would leave 8 − C idle. Each x row segment serves all KH kernel
 *  rows; the column groups' sums are added with subgroupShuffleXor in a fixed order at the end. */
function wgradSmallChannelsFn(O: number, KH: number, KW: number, CP: number, vecDy: boolean): string {
  const QS = 8 / CP;
  const L: string[] = [];
  L.push(`fn wgrad_wg(t: i32, lane: u32) {
  let s = t;                     // one lane tile per split: all channels in one workgroup
  let c = i32(lane) % ${CP};
  let qg = i32(lane) / ${CP};
  let cc = min(c, p.C - 1);
  let HW = p.H * p.W;
  let OHW = p.OH * p.OW;
  let row_start = s * p.e4;      // rows of x: (n, ih)
  let row_end = min(row_start + p.e4, p.N * p.H);`);
  L.push(...xRowAccumulators(O, KH, KW));
  L.push(`  for (var r = row_start; r < row_end; r++) {
    let n = r / p.H;
    let ih = r - n * p.H;
    let xr = i32(p.x_off) + (n * p.C + cc) * HW + ih * p.W;`);
  for (let kh = 0; kh < KH; kh++) {
    L.push(`    let oh${kh} = ih + p.ph - ${kh};
    let rok${kh} = oh${kh} >= 0 && oh${kh} < p.OH;
    let yo${kh} = i32(p.y_off) + n * p.O * OHW + select(0, oh${kh} * p.OW, rok${kh});`);
  }
  L.push(`    for (var ow0 = qg * 4; ow0 < p.OW; ow0 += ${QS * 4}) {`);
  for (let o = 0; o < O; o++) {
    for (let kh = 0; kh < KH; kh++) {
      const base = `yo${kh} + ${o} * OHW`;
      L.push(vecDy
        ? `      let d${o}_${kh} = select(vec4f(0.0), dy4[(${base} + ow0) >> 2u], rok${kh});`
        : `      let d${o}_${kh} = vec4f(${range(4).map((i) => `select(0.0, dy[${base} + min(ow0 + ${i}, p.OW - 1)], rok${kh} && ow0 + ${i} < p.OW)`).join(', ')});`);
    }
  }
  L.push(...xRowFmas(O, KH, KW));
  L.push('    }\n  }');
  // Sum the column groups of each channel (lanes c, c + CP, c + 2·CP, …), the same order every run.
  for (let m = CP; m < 8; m *= 2) {
    for (let o = 0; o < O; o++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      L.push(`  acc${o}_${kh}_${kw} = acc${o}_${kh}_${kw} + subgroupShuffleXor(acc${o}_${kh}_${kw}, ${m}u);`);
    }
  }
  L.push('  if (qg != 0 || c >= p.C || row_start >= p.N * p.H) { return; }');
  L.push(...xRowStore(O, KH, KW));
  L.push('}');
  return L.join('\n');
}

type WgradLayout = 'channel' | 'small-c' | 'c-kh';

/** The wgrad lane layout: where a row's O·KH dy vectors take at most two loads per lane, per input
 *  channel (≥ 8 channels) or per (column group, channel) (fewer); else per (channel, kernel row).
 *  Per channel, each x segment is loaded once for all KH kernel rows, which makes the FCOS bbox
 *  head's wgrad (O·KH = 12) clearly faster than per (c, kh). */
function wgradLayout(g: ConvGeometry): WgradLayout {
  if (g.O * g.KH > 16) return 'c-kh';
  return g.C >= 8 ? 'channel' : 'small-c';
}
const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(n));

/** What the wgrad body depends on: its layout, O, the kernel size (KH only where the layout
 *  unrolls it), the channel count rounded to a power of two (small-c only) and the dy view. */
interface WgradVariant {
  layout: WgradLayout;
  O: number;
  KH: number;
  KW: number;
  CP: number;
  vecDy: boolean;
}
const wgradVariant = (g: ConvGeometry, vecDy: boolean): WgradVariant => {
  const layout = wgradLayout(g);
  return { layout, O: g.O, KH: layout === 'c-kh' ? 0 : g.KH, KW: g.KW, CP: layout === 'small-c' ? pow2(g.C) : 0, vecDy };
};
const wgradBody = (v: WgradVariant) =>
  v.layout === 'channel'
    ? wgradByChannelFn(v.O, v.KH, v.KW, v.vecDy)
    : v.layout === 'small-c'
      ? wgradSmallChannelsFn(v.O, v.KH, v.KW, v.CP, v.vecDy)
      : wgradFn(v.O, v.KW, v.vecDy);

const MAIN = `@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let t = i32(wid.x + wid.y * nwg.x);`;

const wgradKernel = defineKernel({
  name: 'conv.few-channel.wgrad',
  bindings: {
    dy: { ...read('f32'), when: (v) => !v.vecDy },
    dy4: { ...read('vec4f'), when: (v) => v.vecDy },
    x: read('f32'),
    out: rw('f32'),
  },
  params: CONV_PARAMS,
  code: (v: WgradVariant) => ['enable subgroups;', wgradBody(v), MAIN, '  wgrad_wg(t, lane);\n}'].join('\n'),
});

/** WGSL function dgrad_wg(t, lane): workgroup t of the dgrad (lane = one input channel × TH rows ×
 *  4 columns of dx over a few spatial tiles). Reads dy, w; writes dx. */
function dgradFn(O: number, KH: number, KW: number): string {
  const SEG = KW + 3;
  const ROWS = TH + KH - 1;
  // The dy patch a tile reads (ROWS × SEG values per output channel) is the same for all 8 lanes
  // (lane = input channel): each lane loads an eighth of it and subgroupBroadcast hands it on
  // (lavapipe scalarises every load per lane, so 8 identical loads cost 8 loads).
  const PATCH = ROWS * SEG;
  const loads = Math.ceil(PATCH / 8);
  const L: string[] = [];
  L.push(`fn dgrad_wg(t: i32, lane: u32) {
  let cTiles = p.e0;
  let tpw = p.e1;                 // spatial tiles per workgroup
  let c = (t % cTiles) * 8 + i32(lane);
  let sp0 = (t / cTiles) * tpw;
  let cc = min(c, p.C - 1);
  let QW = (p.W + 3) / 4;
  let QH = (p.H + ${TH - 1}) / ${TH};
  let total = p.N * QH * QW;
  let sp1 = min(sp0 + tpw, total);
  let KHW = p.KH * p.KW;
  let OHW = p.OH * p.OW;`);
  // This lane's share of the patch: element e = j·8 + lane sits at patch row e / SEG, column e % SEG.
  for (let j = 0; j < loads; j++) {
    L.push(`  let pe${j} = min(${j * 8} + i32(lane), ${PATCH - 1});
  let pr${j} = pe${j} / ${SEG};
  let pq${j} = pe${j} - pr${j} * ${SEG};`);
  }
  // This lane's weights W[o, cc, kh, kw], kept in registers for all its tiles.
  for (let o = 0; o < O; o++) for (let e = 0; e < KH * KW; e++) L.push(`  let w${o}_${e} = w[i32(p.w_off) + (${o} * p.C + cc) * KHW + ${e}];`);
  L.push(`  for (var sp = sp0; sp < sp1; sp++) {
    let n = sp / (QH * QW);
    let rq = sp - n * QH * QW;
    let ih0 = (rq / QW) * ${TH};
    let iw0 = (rq % QW) * 4;
    let oh0 = ih0 + p.ph - ${KH - 1};
    let ow0 = iw0 + p.pw - ${KW - 1};`);
  for (let j = 0; j < loads; j++) {
    L.push(`    let oh_${j} = oh0 + pr${j};
    let ow_${j} = ow0 + pq${j};
    let ok${j} = oh_${j} >= 0 && oh_${j} < p.OH && ow_${j} >= 0 && ow_${j} < p.OW;
    let at${j} = select(0, oh_${j} * p.OW + ow_${j}, ok${j});`);
  }
  for (let tt = 0; tt < TH; tt++) L.push(`    var acc${tt} = vec4f(0.0);`);
  for (let o = 0; o < O; o++) {
    L.push(`    {
      let yo = i32(p.y_off) + (n * p.O + ${o}) * OHW;`);
    for (let j = 0; j < loads; j++) L.push(`      let v${j} = select(0.0, dy[yo + at${j}], ok${j});`);
    for (let r = 0; r < ROWS; r++) {
      L.push('      {');
      for (let q = 0; q < SEG; q++) {
        const e = r * SEG + q;
        L.push(`        let s${q} = subgroupBroadcast(v${e >> 3}, ${e & 7}u);`);
      }
      // dx column j under tap kw reads dy column q = j − kw + KW − 1; dx row tt under kh reads row r = tt − kh + KH − 1.
      for (let kw = 0; kw < KW; kw++) {
        const q0 = KW - 1 - kw;
        L.push(`        let b${kw} = vec4f(s${q0}, s${q0 + 1}, s${q0 + 2}, s${q0 + 3});`);
      }
      for (let tt = 0; tt < TH; tt++) {
        const kh = tt + KH - 1 - r;
        if (kh < 0 || kh >= KH) continue;
        for (let kw = 0; kw < KW; kw++) L.push(`        acc${tt} = fma(vec4f(w${o}_${kh * KW + kw}), b${kw}, acc${tt});`);
      }
      L.push('      }');
    }
    L.push('    }');
  }
  L.push('    if (c < p.C) {');
  for (let tt = 0; tt < TH; tt++) {
    for (let j = 0; j < 4; j++) {
      L.push(`      if (ih0 + ${tt} < p.H && iw0 + ${j} < p.W) { dx[i32(p.b_off) + ((n * p.C + c) * p.H + ih0 + ${tt}) * p.W + iw0 + ${j}] = acc${tt}.${X[j]}; }`);
    }
  }
  L.push('    }\n  }\n}');
  return L.join('\n');
}

const dgradKernel = defineKernel({
  name: 'conv.few-channel.dgrad',
  bindings: { dy: read('f32'), w: read('f32'), dx: rw('f32') },
  params: CONV_PARAMS,
  code: ({ O, KH, KW }: { O: number; KH: number; KW: number }) => ['enable subgroups;', dgradFn(O, KH, KW), MAIN, '  dgrad_wg(t, lane);\n}'].join('\n'),
});

// dy is bound twice when wgrad reads it as vec4 (two read-only views of one buffer).
const fusedKernel = defineKernel({
  name: 'conv.few-channel.bwd',
  bindings: { dy: read('f32'), dy4: { ...read('vec4f'), when: (v) => v.vecDy }, w: read('f32'), x: read('f32'), dx: rw('f32'), out: rw('f32') },
  params: CONV_PARAMS,
  // dKH: the dgrad's kernel height (the wgrad variant's KH is 0 where its layout does not unroll it).
  code: (v: WgradVariant & { dKH: number }) =>
    ['enable subgroups;', dgradFn(v.O, v.dKH, v.KW), wgradBody(v), MAIN, '  if (t < p.e5) { dgrad_wg(t, lane); } else { wgrad_wg(t - p.e5, lane); }\n}'].join('\n'),
});

/** Workgroups a launch aims for: a few per core, few enough that lavapipe's fixed cost per
 *  workgroup stays small (on the FCOS heads 16 beat 8, 32 and 128). */
const TARGET_WORKGROUPS = 16;

interface DgradPlan {
  cTiles: number;
  /** Spatial tiles per workgroup. */
  tpw: number;
  workgroups: number;
}

function planDgrad(g: ConvGeometry): DgradPlan {
  const cTiles = Math.ceil(g.C / 8);
  const tiles = g.N * Math.ceil(g.H / TH) * Math.ceil(g.W / 4);
  const tpw = Math.max(1, Math.ceil((tiles * cTiles) / TARGET_WORKGROUPS));
  return { cTiles, tpw, workgroups: cTiles * Math.ceil(tiles / tpw) };
}

interface WgradPlan {
  laneTiles: number;
  rowsPerChunk: number;
  /** Row chunks; more than one writes partial sums reduced in a fixed order afterwards. */
  splits: number;
  vecDy: boolean;
  workgroups: number;
}

function planWgrad(g: ConvGeometry, dyOff: number): WgradPlan {
  const layout = wgradLayout(g);
  const laneTiles = layout === 'small-c' ? 1 : Math.ceil((layout === 'channel' ? g.C : g.C * g.KH) / 8);
  const rows = layout === 'c-kh' ? g.N * g.OH : g.N * g.H; // the loop runs over rows of dy or of x
  // Each chunk keeps at least 8 rows of work; enough chunks to fill the machine.
  const want = Math.max(1, Math.min(Math.ceil(rows / 8), Math.ceil(TARGET_WORKGROUPS / laneTiles)));
  const rowsPerChunk = Math.ceil(rows / want);
  const splits = Math.ceil(rows / rowsPerChunk);
  return { laneTiles, rowsPerChunk, splits, vecDy: g.OW % 4 === 0 && dyOff % 4 === 0, workgroups: laneTiles * splits };
}

/** The uniform block of the gradient kernels (field use: see the comment above wgradFn). */
function packGradParams(g: ConvGeometry, offs: { x?: number; w?: number; dy: number; dx?: number }, d: DgradPlan | null, w: WgradPlan | null, outOff: number) {
  return convParams(g, { x: offs.x ?? 0, w: offs.w ?? 0, y: offs.dy, b: offs.dx ?? 0 }, [
    d?.cTiles ?? 0, d?.tpw ?? 0, outOff, w?.laneTiles ?? 0, w?.rowsPerChunk ?? 0, d?.workgroups ?? 0,
  ]);
}

/** Where the wgrad writes: dw itself, or a pooled buffer of per-split partial sums. */
function wgradTarget(g: ConvGeometry, plan: WgradPlan, dw: GPUBuffer, dwOff: number): { out: GPUBuffer; outOff: number; finish: () => void } {
  if (plan.splits === 1) return { out: dw, outOff: dwOff, finish: () => {} };
  const count = g.O * g.C * g.KH * g.KW;
  const partial = rt().pool.acquire(plan.splits * count * 4, GPUBufferUsage.STORAGE, 'conv.few-channel.partial');
  return {
    out: partial,
    outOff: 0,
    finish: () => {
      reduceSplits(partial, plan.splits, count, dw, dwOff);
      rt().pool.release(partial);
    },
  };
}

/** dw[O, C, KH, KW] from dy and x for ≤ 4 output channels (split rows, fixed-order reduction). */
export function convWgradFewChannel(g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number): void {
  check('wgrad', g);
  const plan = planWgrad(g, dyOff);
  const target = wgradTarget(g, plan, dw, dwOff);
  const buffers = plan.vecDy ? { dy4: dy, x, out: target.out } : { dy, x, out: target.out };
  wgradKernel.dispatch(wgradVariant(g, plan.vecDy), buffers, packGradParams(g, { x: xOff, dy: dyOff }, null, plan, target.outOff), plan.workgroups);
  target.finish();
}

/** dx[N, C, H, W] from dy and w for ≤ 4 output channels: one dispatch, no packing (the small FCOS
 *  heads spent more in the packs and launches of a GEMM than in arithmetic). Lane = one input
 *  channel × 2 rows × 4 columns of dx, its O·KH·KW weights in registers. */
export function convDgradFewChannel(g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number): void {
  check('dgrad', g);
  const plan = planDgrad(g);
  dgradKernel.dispatch({ O: g.O, KH: g.KH, KW: g.KW }, { dy, w, dx }, packGradParams(g, { w: wOff, dy: dyOff, dx: dxOff }, plan, null, 0), plan.workgroups);
}

/** dx and dw together in one dispatch (the dgrad workgroups first, then the wgrad's): on the tiny
 *  FCOS maps both gradients are launch-bound, and one launch saves a dispatch, a barrier and the
 *  host cost of a second op. Same kernels and results as convDgradFewChannel + convWgradFewChannel. */
export function convBackwardFewChannel(
  g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  dx: GPUBuffer, dxOff: number, dw: GPUBuffer, dwOff: number,
): void {
  check('backward', g);
  const dp = planDgrad(g);
  const wp = planWgrad(g, dyOff);
  const target = wgradTarget(g, wp, dw, dwOff);
  const buffers = { dy, dy4: wp.vecDy ? dy : undefined, w, x, dx, out: target.out };
  fusedKernel.dispatch({ ...wgradVariant(g, wp.vecDy), dKH: g.KH }, buffers, packGradParams(g, { x: xOff, w: wOff, dy: dyOff, dx: dxOff }, dp, wp, target.outOff), dp.workgroups + wp.workgroups);
  target.finish();
}
