// Convs with few output channels (Og ≤ 4: the FCOS cls/ctrness and bbox heads, the mask predictor,
// the SAM conv). As GEMMs they have 1–4 rows, so any row tile is mostly padding and every input
// value is loaded for only 1–4 FMAs. These kernels instead reuse loaded inputs across taps: for
// stride 1 and dilation 1, the 4 adjacent outputs of a lane under the KW taps of one kernel row
// read KW + 3 consecutive inputs (not 4·KW), and TH output rows share their input rows.
// Weights (forward) and dy (wgrad) are the same for all 8 lanes of a workgroup, so one lane
// loads each value and subgroupBroadcast hands it on (lavapipe scalarises every load per lane,
// perf-anchors §5). Needs 8-wide subgroups (lavapipe); groups = 1, stride 1, dilation 1.
//   forward  lane = (n, TH output rows, 4 output columns) × all Og channels:
//            y[n, o, oh, ow] = Σ_(c, kh, kw) W[o, c, kh, kw] · x[n, c, oh − ph + kh, ow − pw + kw]
//   dgrad    lane = one input channel × TH rows × 4 columns of dx, its O·KH·KW weights in registers
//            (one dispatch, no packs: for the tiny FCOS maps; larger ones go to gemm3):
//            dx[n, c, ih, iw] = Σ_(o, kh, kw) W[o, c, kh, kw] · dy[n, o, ih + ph − kh, iw + pw − kw]
//   wgrad    lane = (c, kh) × all KW taps × all Og channels, looping over (n, oh, 4 columns), the
//            rows split into chunks reduced in a fixed order (deterministic):
//            dW[o, c, kh, kw] = Σ_(n, oh, ow) dy[n, o, oh, ow] · x[n, c, oh − ph + kh, ow − pw + kw]
import { type KernelDef, rt } from '../../core/runtime';
import { type ConvGeometry, packConvParams, WGSL_CONV_PARAMS } from './geometry';
import { range } from './tile';
import { v3Available, packWeightRows, type Tap } from './v3';
import { reduceSplits } from './wgrad';

/** Output rows per lane in the forward kernel. */
const TH = 2;
const X = ['x', 'y', 'z', 'w'] as const;
const cache = new Map<string, KernelDef>();

/** The few-channel kernels handle this geometry. */
export function fewApplicable(g: ConvGeometry): boolean {
  return (
    v3Available() && g.groups === 1 && g.O <= 4 && g.strideH === 1 && g.strideW === 1 && g.dilH === 1 && g.dilW === 1 && g.KW <= 5 && g.KH <= 5
  );
}

function check(what: string, g: ConvGeometry): void {
  if (!fewApplicable(g)) {
    throw new Error(`conv ${what} (few channels): needs 8-wide subgroups, groups 1, ≤ 4 output channels, stride 1, dilation 1 and a kernel ≤ 5x5; got O ${g.O}, groups ${g.groups}, stride ${g.strideH}x${g.strideW}, dilation ${g.dilH}x${g.dilW}, kernel ${g.KH}x${g.KW}`);
  }
}

function forwardDef(O: number, KH: number, KW: number, bias: boolean, relu: boolean): KernelDef {
  const key = `conv.few.fwd:o${O}:k${KH}x${KW}:${bias ? 'b' : ''}${relu ? 'r' : ''}`;
  let d = cache.get(key);
  if (d) return d;
  const SEG = KW + 3; // inputs under 4 adjacent outputs × KW taps
  const ROWS = TH + KH - 1;
  const nw = O * KH * KW;
  const wLoads = Math.ceil(nw / 32);
  const yb = bias ? 3 : 2;
  const L: string[] = [];
  L.push(`enable subgroups;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wp: array<vec4f>;
${bias ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${yb}) var<storage, read_write> y: array<f32>;
${WGSL_CONV_PARAMS}
@group(0) @binding(${yb + 1}) var<uniform> p: P;
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
  d = { key, code: L.join('\n'), bindings: bias ? ['read', 'read', 'read', 'rw'] : ['read', 'read', 'rw'], uniform: true };
  cache.set(key, d);
  return d;
}

/** y = conv(x, w) (+ bias) (then ReLU) for ≤ 4 output channels. */
export function convForwardFew(
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
  const params = packConvParams(g, { x: xOff, y: yOff, b: bias?.offset ?? 0 }, [a.K4 / 4]);
  const def = forwardDef(g.O, g.KH, g.KW, !!bias, relu);
  rt().dispatch(def, bias ? [x, a.a, bias.buffer, y] : [x, a.a, y], params, Math.ceil(lanes / 8));
  rt().pool.release(a.a);
}

function wgradDef(O: number, KW: number, vecDy: boolean): KernelDef {
  const key = `conv.few.wgrad:o${O}:kw${KW}:${vecDy ? 'd4' : 'd1'}`;
  let d = cache.get(key);
  if (d) return d;
  const SEG = KW + 3;
  const L: string[] = [];
  L.push(`enable subgroups;
@group(0) @binding(0) var<storage, read> dy: array<${vecDy ? 'vec4f' : 'f32'}>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${WGSL_CONV_PARAMS}
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let t = i32(wid.x + wid.y * nwg.x);
  let lt = p.e0;                 // lane tiles (workgroups) per split
  let s = t / lt;
  let id = (t - s * lt) * 8 + i32(lane);
  let total = p.C * p.KH;
  let idc = min(id, total - 1);
  let c = idc / p.KH;
  let kh = idc - c * p.KH;
  let HW = p.H * p.W;
  let OHW = p.OH * p.OW;
  let row_start = s * p.e1;
  let row_end = min(row_start + p.e1, p.N * p.OH);
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
    ? '      let dl = dy[(yr + ow0) >> 2u];'
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
  d = { key, code: L.join('\n'), bindings: ['read', 'read', 'rw'], uniform: true };
  cache.set(key, d);
  return d;
}

/** Workgroups we aim for in the split wgrad (a few per core, as in wgrad.ts). */
const TARGET_WORKGROUPS = 128;

/** dw[O, C, KH, KW] from dy and x for ≤ 4 output channels (split rows, fixed-order reduction). */
export function convWgradFew(g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number): void {
  check('wgrad', g);
  const laneTiles = Math.ceil((g.C * g.KH) / 8);
  const rows = g.N * g.OH;
  // Each chunk keeps at least 8 rows of work; enough chunks to fill the machine.
  const want = Math.max(1, Math.min(Math.ceil(rows / 8), Math.ceil(TARGET_WORKGROUPS / laneTiles)));
  const rowsPerChunk = Math.ceil(rows / want);
  const splits = Math.ceil(rows / rowsPerChunk);
  const vecDy = g.OW % 4 === 0 && dyOff % 4 === 0;
  const def = wgradDef(g.O, g.KW, vecDy);
  const count = g.O * g.C * g.KH * g.KW;
  if (splits === 1) {
    rt().dispatch(def, [dy, x, dw], packConvParams(g, { x: xOff, y: dyOff }, [laneTiles, rowsPerChunk, dwOff]), laneTiles);
    return;
  }
  const partial = rt().pool.acquire(splits * count * 4, GPUBufferUsage.STORAGE, 'conv.few.partial');
  rt().dispatch(def, [dy, x, partial], packConvParams(g, { x: xOff, y: dyOff }, [laneTiles, rowsPerChunk, 0]), laneTiles * splits);
  reduceSplits(partial, splits, count, dw, dwOff);
  rt().pool.release(partial);
}

function dgradDef(O: number, KH: number, KW: number): KernelDef {
  const key = `conv.few.dgrad:o${O}:k${KH}x${KW}`;
  let d = cache.get(key);
  if (d) return d;
  const SEG = KW + 3;
  const ROWS = TH + KH - 1;
  const L: string[] = [];
  L.push(`@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${WGSL_CONV_PARAMS}
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = i32(wid.x + wid.y * nwg.x);
  let cTiles = p.e0;
  let tpw = p.e1;                 // spatial tiles per workgroup
  let c = (t % cTiles) * 8 + i32(lid);
  let sp0 = (t / cTiles) * tpw;
  let cc = min(c, p.C - 1);
  let QW = (p.W + 3) / 4;
  let QH = (p.H + ${TH - 1}) / ${TH};
  let total = p.N * QH * QW;
  let sp1 = min(sp0 + tpw, total);
  let KHW = p.KH * p.KW;
  let OHW = p.OH * p.OW;`);
  // This lane's weights W[o, cc, kh, kw], kept in registers for all its tiles.
  for (let o = 0; o < O; o++) for (let e = 0; e < KH * KW; e++) L.push(`  let w${o}_${e} = w[i32(p.w_off) + (${o} * p.C + cc) * KHW + ${e}];`);
  L.push(`  for (var sp = sp0; sp < sp1; sp++) {
    let n = sp / (QH * QW);
    let rq = sp - n * QH * QW;
    let ih0 = (rq / QW) * ${TH};
    let iw0 = (rq % QW) * 4;`);
  for (let r = 0; r < ROWS; r++) L.push(`    let oh${r} = ih0 + p.ph - ${KH - 1} + ${r};\n    let rok${r} = oh${r} >= 0 && oh${r} < p.OH;\n    let ro${r} = select(0, oh${r} * p.OW, rok${r});`);
  for (let q = 0; q < SEG; q++) L.push(`    let ow${q} = iw0 + p.pw - ${KW - 1} + ${q};\n    let cok${q} = ow${q} >= 0 && ow${q} < p.OW;\n    let co${q} = select(0, ow${q}, cok${q});`);
  for (let tt = 0; tt < TH; tt++) L.push(`    var acc${tt} = vec4f(0.0);`);
  for (let o = 0; o < O; o++) {
    L.push(`    {\n      let yo = i32(p.y_off) + (n * p.O + ${o}) * OHW;`);
    for (let r = 0; r < ROWS; r++) {
      L.push('      {');
      for (let q = 0; q < SEG; q++) L.push(`        let s${q} = select(0.0, dy[yo + ro${r} + co${q}], rok${r} && cok${q});`);
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
      L.push(`      if (ih0 + ${tt} < p.H && iw0 + ${j} < p.W) { dx[i32(p.x_off) + ((n * p.C + c) * p.H + ih0 + ${tt}) * p.W + iw0 + ${j}] = acc${tt}.${X[j]}; }`);
    }
  }
  L.push('    }\n  }\n}');
  d = { key, code: L.join('\n'), bindings: ['read', 'read', 'rw'], uniform: true };
  cache.set(key, d);
  return d;
}

/** dx[N, C, H, W] from dy and w for ≤ 4 output channels: one dispatch, no packing (the small FCOS
 *  heads spent more in the packs and launches of a GEMM than in arithmetic). Lane = one input
 *  channel × 2 rows × 4 columns of dx, its O·KH·KW weights in registers. */
export function convDgradFew(g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number): void {
  check('dgrad', g);
  const cTiles = Math.ceil(g.C / 8);
  const tiles = g.N * Math.ceil(g.H / TH) * Math.ceil(g.W / 4);
  // A few spatial tiles per workgroup: enough workgroups for every core, few enough that the
  // per-workgroup cost stays small.
  const tpw = Math.max(1, Math.ceil((tiles * cTiles) / TARGET_WORKGROUPS));
  const params = packConvParams(g, { x: dxOff, w: wOff, y: dyOff }, [cTiles, tpw]);
  rt().dispatch(dgradDef(g.O, g.KH, g.KW), [dy, w, dx], params, cTiles * Math.ceil(tiles / tpw));
}
