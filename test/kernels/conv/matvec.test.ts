// matvec (kernels/conv/matvec.ts): 1×1 convs on 1×1 maps (eSE's fc) as matrix-vector kernels,
// chosen automatically where the channel count and offsets allow vec4 loads, against the float64
// reference and the direct kernels: forward with bias + ReLU, dgrad, wgrad and the fused pair.
import { beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../engine';
import { chooseDgrad, chooseForward, chooseWgrad } from '../../../kernels/conv/chooser';
import { convGeometry } from '../../../kernels/conv/geometry';
import { type ConvCase, opt } from '../../../kernels/conv/reference';
import { testSeed } from '../../util';
import { checkKernel } from './check';

beforeAll(async () => {
  await init();
});

describe('matvec kernels (1×1 conv on 1×1 maps, eSE)', () => {
  const c: ConvCase = { name: 'eSE-like fc 12→9, 5 images', xs: [5, 12, 1, 1], ws: [9, 12, 1, 1], o: opt(1, 0, 1) };
  it('auto picks matvec for aligned operands and a GEMM otherwise', () => {
    const geo = convGeometry('test', c.xs, c.ws, c.o);
    expect(chooseForward(geo, 'auto', [0, 0])).toBe('matvec');
    expect(chooseDgrad(geo, 'auto', [0])).toBe('matvec');
    expect(chooseForward(geo, 'auto', [0, 3])).not.toBe('matvec');
    expect(chooseWgrad(geo, 'auto', [0, 0])).toBe('matvec');
    expect(chooseWgrad(geo, 'auto', [2, 0])).not.toBe('matvec');
    expect(chooseWgrad(geo, 'matvec', [0, 1])).toBe('packed-gemm');
    const odd = convGeometry('test', [2, 6, 1, 1], [4, 6, 1, 1], c.o);
    expect(chooseForward(odd, 'auto', [0, 0])).not.toBe('matvec');
  });
  it('forward (bias + ReLU), dgrad and wgrad vs float64 reference and direct', async () => {
    const seed = testSeed();
    for (const algo of ['matvec', 'auto', 'direct'] as const) await checkKernel(c, seed, algo);
  });
});
