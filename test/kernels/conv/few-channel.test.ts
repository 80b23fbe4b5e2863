// few-channel (kernels/conv/few-channel.ts: ≤ 4 output channels, stride 1; forward, dgrad, wgrad
// and the fused backward) against the float64 reference: the FCOS cls/bbox heads, the mask
// predictor and the SAM conv in miniature, the three wgrad lane layouts, split and unsplit wgrad
// reductions, and non-contiguous and odd-offset inputs. Runs where the adapter has 8-wide
// subgroups (lavapipe).
import { beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init } from '../../../engine';
import { conv2dBackwardRaw, conv2dDgradRaw, conv2dWgradRaw } from '../../../engine/ops/conv';
import { chooseDgrad, chooseForward, chooseWgrad } from '../../../kernels/conv/chooser';
import { fewChannelApplicable } from '../../../kernels/conv/few-channel';
import { convGeometry } from '../../../kernels/conv/geometry';
import { conv2dGradRef, type ConvCase, opt } from '../../../kernels/conv/reference';
import { rt } from '../../../runtime/runtime';
import { expectClose, testSeed } from '../../util';
import { caseData, checkKernel, type CheckOptions } from './check';

let available = false;
beforeAll(async () => {
  await init();
  available = fewChannelApplicable(convGeometry('probe', [1, 1, 3, 3], [1, 1, 3, 3], opt(1, 1, 1)));
});

const FEW: ConvCase[] = [
  { name: 'few: 1 out 3x3 (FCOS cls-like), 9 in, odd plane', xs: [2, 9, 6, 9], ws: [1, 9, 3, 3], o: opt(1, 1, 1) },
  { name: 'few: 4 out 3x3 (FCOS bbox-like), 33 in, 8-wide plane', xs: [1, 33, 5, 8], ws: [4, 33, 3, 3], o: opt(1, 1, 1) },
  { name: 'few: 1 out 1x1 (mask predictor-like), 12-wide', xs: [3, 10, 5, 12], ws: [1, 10, 1, 1], o: opt(1, 0, 1) },
  { name: 'few: 3 out 5x3, pad [2,0], SAM-like 2 in', xs: [2, 2, 7, 10], ws: [3, 2, 5, 3], o: opt(1, [2, 0], 1) },
  { name: 'few: 4 out 5x3 (wgrad lanes per (c, kh): O·KH = 20), 11 in', xs: [2, 11, 6, 7], ws: [4, 11, 5, 3], o: opt(1, [2, 1], 1) },
];

const check = (c: ConvCase, seed: number, view?: CheckOptions['view']) => checkKernel(c, seed, 'few-channel', { view, plainForward: true });

describe('few-channel kernels (forward, dgrad, wgrad) vs float64 reference', () => {
  it('auto picks few-channel for forward, dgrad and wgrad of few-output stride-1 convs, small or large', () => {
    if (!available) return;
    const geo = convGeometry('t', FEW[0]!.xs, FEW[0]!.ws, FEW[0]!.o);
    expect([chooseForward(geo, 'auto', [0, 0]), chooseDgrad(geo, 'auto', [0]), chooseWgrad(geo, 'auto')]).toEqual(['few-channel', 'few-channel', 'few-channel']);
    const big = convGeometry('t', [2, 128, 32, 32], [4, 128, 3, 3], opt(1, 1, 1));
    expect([chooseForward(big, 'auto', [0, 0]), chooseDgrad(big, 'auto', [0]), chooseWgrad(big, 'auto')]).toEqual(['few-channel', 'few-channel', 'few-channel']);
    const strided = convGeometry('t', [1, 4, 9, 9], [2, 4, 3, 3], opt(2, 1, 1));
    expect(chooseForward(strided, 'auto', [0, 0])).not.toBe('few-channel');
  });
  for (const c of FEW) it(c.name, async () => {
    if (!available) return;
    await check(c, testSeed());
  });
  it('fused few-channel backward: one dispatch, bit-identical to the two separate kernels, with and without a split wgrad', async () => {
    if (!available) return;
    // Lanes per (channel, kernel row) or per channel (O·KH ≤ 8, ≥ 8 channels); one row chunk (dw
    // written directly: 1 dispatch) or split rows (+ the fixed-order reduction: 2 dispatches).
    const cases: [ConvCase, number][] = [
      [FEW[1]!, 1],
      [{ name: 'SAM-like 2 → 1, 16 images', xs: [16, 2, 7, 8], ws: [1, 2, 3, 3], o: opt(1, 1, 1) }, 2],
      [{ name: 'cls-like 16 → 1 @4', xs: [1, 16, 4, 4], ws: [1, 16, 3, 3], o: opt(1, 1, 1) }, 1],
      [{ name: 'cls-like 9 → 2, 2 images, odd plane', xs: [2, 9, 7, 9], ws: [2, 9, 3, 3], o: opt(1, 1, 1) }, 2],
    ];
    for (const [c, dispatches] of cases) {
      const { xh, wh, gh, ys } = caseData(c, testSeed());
      const geo = convGeometry('test', c.xs, c.ws, c.o);
      const [x, w, dy] = [fromArray(xh, c.xs), fromArray(wh, c.ws), fromArray(gh, ys)];
      const before = rt().stats().dispatches;
      const [gx, gw] = conv2dBackwardRaw(geo, dy, x, w, true, true);
      expect(rt().stats().dispatches - before, c.name).toBe(dispatches);
      expect(Array.from(await gx!.data()), c.name).toEqual(Array.from(await conv2dDgradRaw(geo, dy, w, 'few-channel').data()));
      expect(Array.from(await gw!.data()), c.name).toEqual(Array.from(await conv2dWgradRaw(geo, dy, x, 'few-channel').data()));
      const ref = conv2dGradRef(xh, c.xs, wh, c.ws, gh, c.o);
      expectClose(await gw!.data(), ref.gw, { atol: 1e-4, rtol: 1e-4, what: `${c.name} grad w`, shape: c.ws });
    }
  });
  it('few-channel with non-contiguous and odd-offset inputs', async () => {
    if (!available) return;
    await check(FEW[1]!, testSeed(), 'offset');
    await check(FEW[3]!, testSeed(), 'permuted');
  });
});
