// Pooling and resampling kernels on contiguous planes: input [P, H, W] → output [P, OH, OW], where
// P = N·C. One output (forward) or one input-gradient element (backward) per invocation. Every
// backward is a gather: an input-gradient element loops over the outputs that read it, so there
// are no float atomics and the result is deterministic.
//   max:      forward writes the value and the argmax (flat index ih·W + iw in the plane); PyTorch's
//             scan order and tie rule (first max wins; a NaN wins and propagates).
//   avg:      PyTorch's avg_pool2d divisor (count_include_pad, window clipped to input + padding).
//   adaptive: windows [floor(o·in/out), ceil((o+1)·in/out)).
//   nearest:  integer scale factors, y[oh, ow] = x[oh / sh, ow / sw].
//   bilinear: align_corners = false: src = max(ratio·(dst + 0.5) − 0.5, 0), PyTorch's formula.
import { defineKernel, rt, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { storageType, withF16Storage } from '../f16-storage';
import { itemsPerBinding, overBindingLimit, windowRange } from '../large';

const WG = 64;

export interface PlaneGeometry {
  planes: number;
  H: number;
  W: number;
  OH: number;
  OW: number;
  /** Window (max/avg) or integer scale (nearest). */
  kH?: number;
  kW?: number;
  sH?: number;
  sW?: number;
  pH?: number;
  pW?: number;
  /** avg: count_include_pad. */
  flag?: boolean;
  /** bilinear: input/output ratios (PyTorch's `scale`), as f32. */
  ratioH?: number;
  ratioW?: number;
}

const PARAMS = {
  count: 'u32', H: 'i32', W: 'i32', OH: 'i32',
  OW: 'i32', kh: 'i32', kw: 'i32', sh: 'i32',
  sw: 'i32', ph: 'i32', pw: 'i32', flag: 'i32',
  in_off: 'u32', out_off: 'u32', rh: 'f32', rw: 'f32',
  arg_off: 'u32',
} as const;

function params(g: PlaneGeometry, count: number, inOff: number, outOff: number, argOff = 0) {
  return {
    count, H: g.H, W: g.W, OH: g.OH,
    OW: g.OW, kh: g.kH ?? 1, kw: g.kW ?? 1, sh: g.sH ?? 1,
    sw: g.sW ?? 1, ph: g.pH ?? 0, pw: g.pW ?? 0, flag: g.flag ? 1 : 0,
    in_off: inOff, out_off: outOff, rh: g.ratioH ?? 1, rw: g.ratioW ?? 1,
    arg_off: argOff,
  };
}

/** Decode the element index `i` into (plane, row, col) of a [planes, rows, cols] grid. */
const decode = (rows: string, cols: string) => `
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.count) { return; }
  let col = i32(i % u32(${cols}));
  let row = i32((i / u32(${cols})) % u32(${rows}));
  let plane = i32(i / u32(${cols} * ${rows}));`;

const ENTRY = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {`;

/** First and last window index (clamped to [0, n_out)) whose window [o·s − p, o·s − p + k) holds i. */
const WINDOW_RANGE = /* wgsl */ `
fn win_lo(i: i32, k: i32, s: i32, p: i32) -> i32 { let t = i + p - k + 1; return max(0, select((t + s - 1) / s, 0, t <= 0)); }
fn win_hi(i: i32, s: i32, p: i32, n_out: i32) -> i32 { return min(n_out - 1, (i + p) / s); }
fn is_nan_bits(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
// avg_pool2d divisor of output (oh, ow) and its clipped window, PyTorch's rule.
fn avg_window(oh: i32, ow: i32) -> vec4i {
  let h0 = oh * p.sh - p.ph;
  let w0 = ow * p.sw - p.pw;
  let h1 = min(h0 + p.kh, p.H + p.ph);
  let w1 = min(w0 + p.kw, p.W + p.pw);
  return vec4i(max(h0, 0), max(w0, 0), min(h1, p.H), min(w1, p.W));
}
fn avg_divisor(oh: i32, ow: i32) -> f32 {
  let h0 = oh * p.sh - p.ph;
  let w0 = ow * p.sw - p.pw;
  let pool = (min(h0 + p.kh, p.H + p.ph) - h0) * (min(w0 + p.kw, p.W + p.pw) - w0);
  let c = avg_window(oh, ow);
  return f32(select((c.z - c.x) * (c.w - c.y), pool, p.flag != 0));
}
fn ad_start(o: i32, n_in: i32, n_out: i32) -> i32 { return (o * n_in) / n_out; }
fn ad_end(o: i32, n_in: i32, n_out: i32) -> i32 { return ((o + 1) * n_in + n_out - 1) / n_out; }
fn lin_src(ratio: f32, dst: i32) -> f32 { return max(ratio * (f32(dst) + 0.5) - 0.5, 0.0); }
// Weight with which output dst reads input i along one axis (0 when it does not).
fn lin_weight(ratio: f32, dst: i32, n_in: i32, i: i32) -> f32 {
  let s = lin_src(ratio, dst);
  let i0 = i32(floor(s));
  let i1 = i0 + select(0, 1, i0 < n_in - 1);
  let l1 = clamp(s - f32(i0), 0.0, 1.0);
  var w = 0.0;
  if (i0 == i) { w += 1.0 - l1; }
  if (i1 == i) { w += l1; }
  return w;
}`;

// Bindings: max_fwd x, y, arg; max_bwd gy, arg, gx; every other forward x -> y, backward gy -> gx.
const BODIES = {
  max_fwd: {
    body: `${decode('p.OH', 'p.OW')}
  let base = i32(p.in_off) + plane * p.H * p.W;
  var h0 = row * p.sh - p.ph;
  var w0 = col * p.sw - p.pw;
  let h1 = min(h0 + p.kh, p.H);
  let w1 = min(w0 + p.kw, p.W);
  h0 = max(h0, 0);
  w0 = max(w0, 0);
  let inf_bits = 0x7f800000u;
  var best = -bitcast<f32>(inf_bits);
  var best_i = h0 * p.W + w0;
  for (var ih = h0; ih < h1; ih++) {
    for (var iw = w0; iw < w1; iw++) {
      let v = x[base + ih * p.W + iw];
      if (v > best || is_nan_bits(v)) { best = v; best_i = ih * p.W + iw; }
    }
  }
  y[p.out_off + i] = best;
  arg[p.arg_off + i] = best_i;`,
  },
  max_bwd: {
    body: `${decode('p.H', 'p.W')}
  let me = row * p.W + col;
  let gbase = plane * p.OH * p.OW;
  var acc = 0.0;
  for (var oh = win_lo(row, p.kh, p.sh, p.ph); oh <= win_hi(row, p.sh, p.ph, p.OH); oh++) {
    for (var ow = win_lo(col, p.kw, p.sw, p.pw); ow <= win_hi(col, p.sw, p.pw, p.OW); ow++) {
      let o = gbase + oh * p.OW + ow;
      if (arg[i32(p.arg_off) + o] == me) { acc += gy[i32(p.in_off) + o]; }
    }
  }
  gx[p.out_off + i] = acc;`,
  },
  avg_fwd: {
    body: `${decode('p.OH', 'p.OW')}
  let base = i32(p.in_off) + plane * p.H * p.W;
  let c = avg_window(row, col);
  var acc = 0.0;
  for (var ih = c.x; ih < c.z; ih++) {
    for (var iw = c.y; iw < c.w; iw++) { acc += x[base + ih * p.W + iw]; }
  }
  y[p.out_off + i] = select(acc / avg_divisor(row, col), 0.0, c.x >= c.z || c.y >= c.w);`,
  },
  avg_bwd: {
    body: `${decode('p.H', 'p.W')}
  let gbase = i32(p.in_off) + plane * p.OH * p.OW;
  var acc = 0.0;
  for (var oh = win_lo(row, p.kh, p.sh, p.ph); oh <= win_hi(row, p.sh, p.ph, p.OH); oh++) {
    for (var ow = win_lo(col, p.kw, p.sw, p.pw); ow <= win_hi(col, p.sw, p.pw, p.OW); ow++) {
      let c = avg_window(oh, ow);
      if (row >= c.x && row < c.z && col >= c.y && col < c.w) { acc += gy[gbase + oh * p.OW + ow] / avg_divisor(oh, ow); }
    }
  }
  gx[p.out_off + i] = acc;`,
  },
  adaptive_fwd: {
    body: `${decode('p.OH', 'p.OW')}
  let base = i32(p.in_off) + plane * p.H * p.W;
  let h0 = ad_start(row, p.H, p.OH);
  let h1 = ad_end(row, p.H, p.OH);
  let w0 = ad_start(col, p.W, p.OW);
  let w1 = ad_end(col, p.W, p.OW);
  var acc = 0.0;
  for (var ih = h0; ih < h1; ih++) {
    for (var iw = w0; iw < w1; iw++) { acc += x[base + ih * p.W + iw]; }
  }
  y[p.out_off + i] = acc / f32((h1 - h0) * (w1 - w0));`,
  },
  adaptive_bwd: {
    body: `${decode('p.H', 'p.W')}
  let gbase = i32(p.in_off) + plane * p.OH * p.OW;
  var acc = 0.0;
  let oh_end = min(p.OH, ((row + 1) * p.OH + p.H - 1) / p.H);
  let ow_end = min(p.OW, ((col + 1) * p.OW + p.W - 1) / p.W);
  for (var oh = (row * p.OH) / p.H; oh < oh_end; oh++) {
    let h0 = ad_start(oh, p.H, p.OH);
    let h1 = ad_end(oh, p.H, p.OH);
    if (row < h0 || row >= h1) { continue; }
    for (var ow = (col * p.OW) / p.W; ow < ow_end; ow++) {
      let w0 = ad_start(ow, p.W, p.OW);
      let w1 = ad_end(ow, p.W, p.OW);
      if (col < w0 || col >= w1) { continue; }
      acc += gy[gbase + oh * p.OW + ow] / f32((h1 - h0) * (w1 - w0));
    }
  }
  gx[p.out_off + i] = acc;`,
  },
  nearest_fwd: {
    body: `${decode('p.OH', 'p.OW')}
  y[p.out_off + i] = x[i32(p.in_off) + (plane * p.H + row / p.kh) * p.W + col / p.kw];`,
  },
  nearest_bwd: {
    body: `${decode('p.H', 'p.W')}
  var acc = 0.0;
  for (var a = 0; a < p.kh; a++) {
    let ob = i32(p.in_off) + (plane * p.OH + row * p.kh + a) * p.OW + col * p.kw;
    for (var b = 0; b < p.kw; b++) { acc += gy[ob + b]; }
  }
  gx[p.out_off + i] = acc;`,
  },
  bilinear_fwd: {
    body: `${decode('p.OH', 'p.OW')}
  let base = i32(p.in_off) + plane * p.H * p.W;
  let sh = lin_src(p.rh, row);
  let h0 = i32(floor(sh));
  let h1 = h0 + select(0, 1, h0 < p.H - 1);
  let lh1 = clamp(sh - f32(h0), 0.0, 1.0);
  let sw = lin_src(p.rw, col);
  let w0 = i32(floor(sw));
  let w1 = w0 + select(0, 1, w0 < p.W - 1);
  let lw1 = clamp(sw - f32(w0), 0.0, 1.0);
  let top = (1.0 - lw1) * x[base + h0 * p.W + w0] + lw1 * x[base + h0 * p.W + w1];
  let bot = (1.0 - lw1) * x[base + h1 * p.W + w0] + lw1 * x[base + h1 * p.W + w1];
  y[p.out_off + i] = (1.0 - lh1) * top + lh1 * bot;`,
  },
  bilinear_bwd: {
    body: `${decode('p.H', 'p.W')}
  let gbase = i32(p.in_off) + plane * p.OH * p.OW;
  // Outputs whose source index lies in [i − 1, i + 1), widened by one for rounding.
  let oh0 = max(0, i32(floor((f32(row) - 0.5) / p.rh - 0.5)) - 1);
  let oh1 = min(p.OH - 1, i32(ceil((f32(row) + 1.5) / p.rh - 0.5)) + 1);
  let ow0 = max(0, i32(floor((f32(col) - 0.5) / p.rw - 0.5)) - 1);
  let ow1 = min(p.OW - 1, i32(ceil((f32(col) + 1.5) / p.rw - 0.5)) + 1);
  var acc = 0.0;
  for (var oh = oh0; oh <= oh1; oh++) {
    let wy = lin_weight(p.rh, oh, p.H, row);
    if (wy == 0.0) { continue; }
    var racc = 0.0;
    for (var ow = ow0; ow <= ow1; ow++) {
      let wx = lin_weight(p.rw, ow, p.W, col);
      if (wx != 0.0) { racc += wx * gy[gbase + oh * p.OW + ow]; }
    }
    acc += wy * racc;
  }
  gx[p.out_off + i] = acc;`,
  },
};

export type PoolKernel = keyof typeof BODIES;
type PlainKernel = Exclude<PoolKernel, 'max_fwd' | 'max_bwd'>;

// f16 storage (variant h): x, y, gy, gx are f16 arrays, the window arithmetic stays f32.
const code = (name: PoolKernel, h = false) => withF16Storage(`${WGSL_LINEAR_WORKGROUP}\n${WINDOW_RANGE}\n${ENTRY}${BODIES[name].body}\n}`, h, ['x', 'gy'], ['y', 'gx']);
const F32_READ = { type: (v: { h: boolean }) => storageType(v.h), access: 'read' } as const;
const F32_RW = { type: (v: { h: boolean }) => storageType(v.h), access: 'rw' } as const;

const maxForward = defineKernel({
  name: 'pool.max_fwd',
  bindings: { x: F32_READ, y: F32_RW, arg: { type: 'i32', access: 'rw' } },
  params: PARAMS,
  code: ({ h }: { h: boolean }) => code('max_fwd', h),
});
const maxBackward = defineKernel({
  name: 'pool.max_bwd',
  bindings: { gy: F32_READ, arg: { type: 'i32', access: 'read' }, gx: F32_RW },
  params: PARAMS,
  code: ({ h }: { h: boolean }) => code('max_bwd', h),
});
const plainForward = defineKernel({
  name: 'pool.fwd',
  bindings: { x: F32_READ, y: F32_RW },
  params: PARAMS,
  code: ({ op, h }: { op: PlainKernel; h: boolean }) => code(op, h),
});
const plainBackward = defineKernel({
  name: 'pool.bwd',
  bindings: { gy: F32_READ, gx: F32_RW },
  params: PARAMS,
  code: ({ op, h }: { op: PlainKernel; h: boolean }) => code(op, h),
});

/**
 * Record one pool kernel. Forward kernels produce one element per output (`count` = P·OH·OW),
 * backward kernels one per input element (P·H·W). `buffers` follow each kernel's binding order;
 * `inOff`/`outOff` are element offsets of the first read and the written operand (the argmax
 * buffer, when present, is always dense from 0).
 */
export function launchPool(name: PoolKernel, g: PlaneGeometry, buffers: GPUBuffer[], inOff: number, outOff: number, argOff = 0, h = false): void {
  const forward = name.endsWith('_fwd');
  const count = g.planes * (forward ? g.OH * g.OW : g.H * g.W);
  if (count === 0) return;
  if (overBindingLimit(...buffers)) return launchPoolSplit(name, g, buffers, inOff, outOff, argOff, h);
  const p = params(g, count, inOff, outOff, argOff);
  const groups = Math.ceil(count / WG);
  const [a, b, c] = buffers as [GPUBuffer, GPUBuffer, GPUBuffer?];
  if (name === 'max_fwd') maxForward.dispatch({ h }, { x: a, y: b, arg: c! }, p, groups);
  else if (name === 'max_bwd') maxBackward.dispatch({ h }, { gy: a, arg: b, gx: c! }, p, groups);
  else if (forward) plainForward.dispatch({ op: name, h }, { x: a, y: b }, p, groups);
  else plainBackward.dispatch({ op: name, h }, { gy: a, gx: b }, p, groups);
}

/** launchPool over operands larger than one storage binding (kernels/large.ts): one launch per
 *  block of planes, every operand bound as a window over the block's planes. */
function launchPoolSplit(name: PoolKernel, g: PlaneGeometry, buffers: GPUBuffer[], inOff: number, outOff: number, argOff: number, h: boolean): void {
  const eb = h ? 2 : 4;
  const forward = name.endsWith('_fwd');
  const inPlane = forward ? g.H * g.W : g.OH * g.OW;
  const outPlane = forward ? g.OH * g.OW : g.H * g.W;
  const argPlane = g.OH * g.OW;
  const pb = Math.min(itemsPerBinding(inPlane * eb), itemsPerBinding(outPlane * eb));
  if (pb < 1) throw new Error(`pool ${name}: one plane ${g.H}x${g.W} -> ${g.OH}x${g.OW} is over the ${rt().bindingLimit}-byte storage binding limit`);
  // Which buffer is which: max_fwd x, y, arg; max_bwd gy, arg, gx; the others in, out.
  const roles: ('in' | 'out' | 'arg')[] = name === 'max_fwd' ? ['in', 'out', 'arg'] : name === 'max_bwd' ? ['in', 'arg', 'out'] : ['in', 'out'];
  for (let p0 = 0; p0 < g.planes; p0 += pb) {
    const k = Math.min(pb, g.planes - p0);
    let ins = 0;
    let outs = 0;
    let args = 0;
    const bufs = buffers.map((b, j) => {
      const role = roles[j]!;
      const [off, per] = role === 'in' ? [inOff, inPlane] : role === 'out' ? [outOff, outPlane] : [argOff, argPlane];
      const w = windowRange(b, off + p0 * per, k * per, role === 'arg' ? 4 : eb);
      if (role === 'in') ins = w.offset;
      else if (role === 'out') outs = w.offset;
      else args = w.offset;
      return w.buffer;
    });
    launchPool(name, { ...g, planes: k }, bufs, ins, outs, args, h);
  }
}
