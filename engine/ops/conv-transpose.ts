// conv_transpose2d (NCHW, f32 or f16 storage as conv2d; in autocast's f16 list): the adjoint of conv2d. With the conv whose input is this op's
// output y [N, Cout, OH, OW] and whose output is x [N, Cin, H, W] (weight [Cin, Cout/groups, KH,
// KW] read as that conv's [O, C/groups, KH, KW]):
//   forward  y  = conv dgrad(x)
//   grad x   gx = conv forward(gy)
//   grad w   gw = conv wgrad(dy := x, input := gy)
// so it reuses the conv kernels and their chooser (kernels/conv/chooser.ts) as they are.
import { record } from '../autograd';
import { type Tensor } from '../tensor';
import { mapRaw } from './elementwise';
import { sum } from './reduce';
import { reshape } from './view';
import { checkConvDtypes, conv2dDgradRaw, conv2dForwardRaw, conv2dWgradRaw } from './conv';
import { autocastF16 } from '../amp/autocast';
import { type ConvAlgo } from '../../kernels/conv/chooser';
import { convGeometry, pair, type Pair } from '../../kernels/conv/geometry';

export interface ConvTranspose2dOptions {
  stride?: Pair;
  padding?: Pair;
  outputPadding?: Pair;
  dilation?: Pair;
  groups?: number;
  algo?: ConvAlgo;
}

/** PyTorch's F.conv_transpose2d. x [N, Cin, H, W], w [Cin, Cout/groups, KH, KW], b [Cout]. */
export function convTranspose2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: ConvTranspose2dOptions = {}): Tensor {
  x = autocastF16(x);
  w = autocastF16(w);
  checkConvDtypes('conv_transpose2d', x, w, b);
  if (x.ndim !== 4) throw new Error(`conv_transpose2d: input must be 4-d [N, Cin, H, W], got [${x.shape}]`);
  if (w.ndim !== 4) throw new Error(`conv_transpose2d: weight must be 4-d [Cin, Cout/groups, KH, KW], got [${w.shape}]`);
  const stride = pair(opts.stride ?? 1);
  const padding = pair(opts.padding ?? 0);
  const dilation = pair(opts.dilation ?? 1);
  const outPad = pair(opts.outputPadding ?? 0);
  const groups = opts.groups ?? 1;
  const [N, Cin, H, W] = x.shape as [number, number, number, number];
  const [wCin, CoutG, KH, KW] = w.shape as [number, number, number, number];
  if (wCin !== Cin) throw new Error(`conv_transpose2d: weight [${w.shape}] expects ${wCin} input channels, input has ${Cin}`);
  for (let a = 0; a < 2; a++) {
    if (!(outPad[a]! >= 0 && (outPad[a]! < stride[a]! || outPad[a]! < dilation[a]!))) {
      throw new Error(`conv_transpose2d: output_padding [${outPad}] must be smaller than stride [${stride}] or dilation [${dilation}]`);
    }
  }
  const Cout = CoutG * groups;
  const OH = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (KH - 1) + outPad[0] + 1;
  const OW = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (KW - 1) + outPad[1] + 1;
  if (OH < 1 || OW < 1) throw new Error(`conv_transpose2d: output size ${OH}x${OW} is empty (input ${H}x${W}, padding [${padding}])`);
  if (b && (b.ndim !== 1 || b.shape[0] !== Cout)) throw new Error(`conv_transpose2d: bias must be [${Cout}], got [${b.shape}]`);
  // The adjoint conv: input [N, Cout, OH, OW] → output [N, Cin, H, W].
  const geo = convGeometry('conv_transpose2d', [N, Cout, OH, OW], w.shape, { stride, padding, dilation, groups });
  if (geo.OH !== H || geo.OW !== W) throw new Error(`conv_transpose2d: internal size mismatch ${geo.OH}x${geo.OW} vs ${H}x${W}`);
  let y = conv2dDgradRaw(geo, x, w, opts.algo);
  if (b) {
    const bv = reshape(b.detach(), [1, Cout, 1, 1]);
    const yb = mapRaw('bias_add', 'x + y', [y, bv], y.shape, y.dtype, 'f32');
    bv.dispose();
    y.dispose();
    y = yb;
  }
  const inputs = b ? [x, w, b] : [x, w];
  return record(y, 'conv_transpose2d', inputs, (g) => [
    x.requiresGrad ? conv2dForwardRaw(geo, g, w, null, false, opts.algo) : null,
    w.requiresGrad ? conv2dWgradRaw(geo, x, g, opts.algo) : null,
    b?.requiresGrad ? sum(g, [0, 2, 3]) : null,
  ]);
}
