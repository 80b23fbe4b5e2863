// direct: the readable reference kernels, one output element per thread. Forward (y = conv(x, w)
// + b, optional fused ReLU), grad input (gather: each dx element loops over the outputs and taps
// that read it) and grad weight (each dw element loops over N·OH·OW). They handle every geometry
// (groups, stride, padding, dilation) and are the fast path where the work per output is tiny
// (depthwise) and, on hardware GPUs, for 3×3 convs on small maps (chooser.ts); the other kernels
// are checked against them. With f16 storage (`g.f16`) x, w, y, dy and dx are f16 arrays, read
// into f32 and accumulated in f32; the bias and dw stay f32.
import { defineKernel, read, rw, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { CONV_PARAMS, type ConvGeometry, convParams } from './geometry';

const WG = 64;
/** The storage type of the activations and weight: f16 when the geometry says so. */
const act = (v: { h: boolean }) => (v.h ? 'f16' : 'f32');
const actRead = { type: act, access: 'read' } as const;

const forwardKernel = defineKernel({
  name: 'conv.direct.fwd',
  bindings: { x: actRead, w: actRead, bias: { ...read('f32'), when: (v: { hasBias: boolean }) => v.hasBias }, y: { type: act, access: 'rw' } },
  params: CONV_PARAMS,
  code: ({ hasBias, relu, h }: { hasBias: boolean; relu: boolean; h: boolean }) => /* wgsl */ `${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= u32(p.N * p.O * p.OH * p.OW)) { return; }
  let ow = i32(i % u32(p.OW));
  var r = i / u32(p.OW);
  let oh = i32(r % u32(p.OH));
  r = r / u32(p.OH);
  let o = i32(r % u32(p.O));
  let n = i32(r / u32(p.O));
  let g = o / p.Og;
  var acc = 0.0;
  for (var c = 0; c < p.Cg; c++) {
    let xc = i32(p.x_off) + (n * p.C + g * p.Cg + c) * p.H * p.W;
    let wc = i32(p.w_off) + (o * p.Cg + c) * p.KH * p.KW;
    for (var kh = 0; kh < p.KH; kh++) {
      let ih = oh * p.sh - p.ph + kh * p.dh;
      if (ih < 0 || ih >= p.H) { continue; }
      for (var kw = 0; kw < p.KW; kw++) {
        let iw = ow * p.sw - p.pw + kw * p.dw;
        if (iw < 0 || iw >= p.W) { continue; }
        acc += f32(x[xc + ih * p.W + iw]) * f32(w[wc + kh * p.KW + kw]);
      }
    }
  }
  ${hasBias ? 'acc += bias[p.b_off + u32(o)];' : ''}
  ${relu ? 'acc = max(acc, 0.0);' : ''}
  y[p.y_off + i] = ${act({ h })}(acc);
}`,
});

/** y[N, O, OH, OW] = conv(x, w) (+ bias) (then ReLU). Buffers contiguous from the given offsets. */
export function convForwardDirect(
  g: ConvGeometry,
  x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  bias: { buffer: GPUBuffer; offset: number } | null, relu: boolean,
  y: GPUBuffer, yOff: number,
): void {
  const params = convParams(g, { x: xOff, w: wOff, y: yOff, b: bias?.offset ?? 0 });
  forwardKernel.dispatch({ hasBias: !!bias, relu, h: !!g.f16 }, { x, w, bias: bias?.buffer, y }, params, Math.ceil((g.N * g.O * g.OH * g.OW) / WG));
}

const dgradKernel = defineKernel({
  name: 'conv.direct.dgrad',
  bindings: { dy: actRead, w: actRead, dx: { type: act, access: 'rw' } },
  params: CONV_PARAMS,
  code: ({ h }: { h: boolean }) => /* wgsl */ `${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= u32(p.N * p.C * p.H * p.W)) { return; }
  let iw = i32(i % u32(p.W));
  var r = i / u32(p.W);
  let ih = i32(r % u32(p.H));
  r = r / u32(p.H);
  let c = i32(r % u32(p.C));
  let n = i32(r / u32(p.C));
  let g = c / p.Cg;
  let cg = c - g * p.Cg;
  var acc = 0.0;
  for (var kh = 0; kh < p.KH; kh++) {
    let th = ih + p.ph - kh * p.dh;
    if (th < 0 || th % p.sh != 0 || th / p.sh >= p.OH) { continue; }
    let oh = th / p.sh;
    for (var kw = 0; kw < p.KW; kw++) {
      let tw = iw + p.pw - kw * p.dw;
      if (tw < 0 || tw % p.sw != 0 || tw / p.sw >= p.OW) { continue; }
      let ow = tw / p.sw;
      for (var og = 0; og < p.Og; og++) {
        let o = g * p.Og + og;
        acc += f32(dy[i32(p.y_off) + ((n * p.O + o) * p.OH + oh) * p.OW + ow]) * f32(w[i32(p.w_off) + ((o * p.Cg + cg) * p.KH + kh) * p.KW + kw]);
      }
    }
  }
  dx[p.x_off + i] = ${act({ h })}(acc);
}`,
});

/** dx[N, C, H, W] = grad of conv w.r.t. its input, from dy[N, O, OH, OW]. */
export function convDgradDirect(g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number): void {
  const params = convParams(g, { x: dxOff, w: wOff, y: dyOff });
  dgradKernel.dispatch({ h: !!g.f16 }, { dy, w, dx }, params, Math.ceil((g.N * g.C * g.H * g.W) / WG));
}

const wgradKernel = defineKernel({
  name: 'conv.direct.wgrad',
  bindings: { dy: actRead, x: actRead, dw: rw('f32') },
  params: CONV_PARAMS,
  code: (_: { h: boolean }) => /* wgsl */ `${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= u32(p.O * p.Cg * p.KH * p.KW)) { return; }
  let kw = i32(i % u32(p.KW));
  var r = i / u32(p.KW);
  let kh = i32(r % u32(p.KH));
  r = r / u32(p.KH);
  let cg = i32(r % u32(p.Cg));
  let o = i32(r / u32(p.Cg));
  let c = (o / p.Og) * p.Cg + cg;
  var acc = 0.0;
  for (var n = 0; n < p.N; n++) {
    for (var oh = 0; oh < p.OH; oh++) {
      let ih = oh * p.sh - p.ph + kh * p.dh;
      if (ih < 0 || ih >= p.H) { continue; }
      for (var ow = 0; ow < p.OW; ow++) {
        let iw = ow * p.sw - p.pw + kw * p.dw;
        if (iw < 0 || iw >= p.W) { continue; }
        acc += f32(dy[i32(p.y_off) + ((n * p.O + o) * p.OH + oh) * p.OW + ow]) * f32(x[i32(p.x_off) + ((n * p.C + c) * p.H + ih) * p.W + iw]);
      }
    }
  }
  dw[p.w_off + i] = acc;
}`,
});

/** dw[O, C/groups, KH, KW] = grad of conv w.r.t. its weight, from dy and the input x. */
export function convWgradDirect(g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number): void {
  const params = convParams(g, { x: xOff, w: dwOff, y: dyOff });
  wgradKernel.dispatch({ h: !!g.f16 }, { dy, x, dw }, params, Math.ceil((g.O * (g.C / g.groups) * g.KH * g.KW) / WG));
}
