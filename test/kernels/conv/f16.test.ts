// f16 storage in the conv kernels that take it (chooser.ts F16_KERNELS: direct, and subgroup-gemm
// where the adapter has 8-wide subgroups): x, w, dy as f16 (odd shapes, permuted and offset
// views), y and dx f16, dw f32, against the float64 reference on the f16-rounded inputs at f16
// tolerance; and the chooser: f16 inputs get an f16 kernel, f32 choices are unchanged.
import { beforeAll, describe, expect, it } from 'vitest';
import { init, rt } from '../../../engine';
import { chooseDgrad, chooseForward, chooseFusedBackward, chooseWgrad, F16_KERNELS, type ChooserEnv } from '../../../kernels/conv/chooser';
import { convGeometry } from '../../../kernels/conv/geometry';
import { subgroupGemmApplicable } from '../../../kernels/conv/subgroup-gemm/conv';
import { type ConvCase, opt } from '../../../kernels/conv/reference';
import { testSeed } from '../../util';
import { checkKernel } from './check';

let f16 = false;
let subgroups = false;
beforeAll(async () => {
  await init();
  f16 = rt().gpu.features.f16;
  subgroups = subgroupGemmApplicable(convGeometry('probe', [1, 1, 3, 3], [1, 1, 3, 3], opt(1, 1, 1)));
});

const CASES: ConvCase[] = [
  { name: '3x3 pad 1, 17 out, 5 in', xs: [2, 5, 7, 9], ws: [17, 5, 3, 3], o: opt(1, 1, 1) },
  { name: 'groups 2, 3x2 kernel, stride [2,1], pad [0,1]', xs: [1, 6, 9, 10], ws: [10, 3, 3, 2], o: opt([2, 1], [0, 1], 1, 2) },
  { name: 'dilation 2 pad 2, 8x12 plane (vec4 stores)', xs: [1, 7, 8, 12], ws: [6, 7, 3, 3], o: opt(1, 2, 2) },
  { name: 'k2 s2, 5 out', xs: [3, 6, 8, 6], ws: [5, 6, 2, 2], o: opt(2, 0, 1) },
];

describe('conv f16 storage vs float64 reference', () => {
  for (const algo of ['direct', 'subgroup-gemm'] as const) {
    CASES.forEach((c, k) => {
      for (const view of [undefined, 'permuted', 'offset'] as const) {
        it(`${algo}: ${c.name}${view ? `, ${view} inputs` : ''}`, async () => {
          if (!f16 || (algo === 'subgroup-gemm' && !subgroups)) return;
          await checkKernel(c, testSeed() + k, algo, { view, plainForward: true, f16: true });
        });
      }
    });
  }
});

describe('conv chooser with f16 storage', () => {
  const lavapipe: ChooserEnv = { caps: { software: true, subgroups8: true }, pinned: undefined };
  const gpu: ChooserEnv = { caps: { software: false, subgroups8: false }, pinned: undefined };
  const shapes = [
    convGeometry('3x3', [2, 64, 32, 32], [64, 64, 3, 3], opt(1, 1, 1)),
    convGeometry('few', [2, 128, 32, 32], [4, 128, 3, 3], opt(1, 1, 1)),
    convGeometry('eSE fc', [2, 256, 1, 1], [256, 256, 1, 1], opt(1, 0, 1)),
    convGeometry('depthwise', [2, 32, 16, 16], [32, 1, 3, 3], opt(1, 1, 1, 32)),
    convGeometry('stem', [2, 3, 64, 64], [64, 3, 3, 3], opt(2, 1, 1)),
  ];
  it('picks an f16 kernel for every f16 shape and direction, the f32 table otherwise', () => {
    for (const env of [lavapipe, gpu]) {
      for (const g of shapes) {
        const h = { ...g, f16: true };
        for (const k of [chooseForward(h, 'auto', [0, 0], env), chooseDgrad(h, 'auto', [0], env), chooseWgrad(h, 'auto', [0, 0], env)]) {
          expect(F16_KERNELS).toContain(k);
        }
        expect(chooseFusedBackward(h, 'auto', { x: 0, w: 0, dw: 0 }, env)).toBeNull();
      }
    }
    // The same lavapipe 3×3 in f32 and f16: subgroup-gemm both ways; the few-channel head in f32
    // keeps few-channel, in f16 takes subgroup-gemm.
    expect(chooseForward(shapes[0]!, 'auto', [0, 0], lavapipe)).toBe('subgroup-gemm');
    expect(chooseForward({ ...shapes[0]!, f16: true }, 'auto', [0, 0], lavapipe)).toBe('subgroup-gemm');
    expect(chooseForward(shapes[1]!, 'auto', [0, 0], lavapipe)).toBe('few-channel');
    expect(chooseForward({ ...shapes[1]!, f16: true }, 'auto', [0, 0], lavapipe)).toBe('subgroup-gemm');
  });
  it('an explicit request for a kernel without f16 storage fails clearly', () => {
    expect(() => chooseForward({ ...shapes[0]!, f16: true }, 'packed-gemm', [0, 0], lavapipe)).toThrow(/has no f16 storage/);
  });
});
