// Parity with PyTorch 1.13 on committed fixtures (scripts/fixtures/make_conv_fixtures.py):
// conv2d (plain, depthwise, dilated, strided, grouped 1×1 + fused ReLU), conv_transpose2d,
// max_pool2d with ceil_mode, avg/adaptive pooling, nearest and bilinear interpolate — forward
// output and every input gradient of sum(y · gy). Error: max |ours − torch| / max |torch| ≤ 1e-4.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init, mul, sum, type Tensor } from '../../../engine';
import { conv2d } from '../../../engine/ops/conv';
import { convTranspose2d } from '../../../engine/ops/conv-transpose';
import { adaptiveAvgPool2d, avgPool2d, interpolateBilinear, maxPool2d, upsampleNearest2d } from '../../../engine/ops/pool';

interface Arr {
  shape: number[];
  data: number[];
}
interface Case {
  name: string;
  op: string;
  params: Record<string, any>;
  gy: Arr;
  y: Arr;
  [k: string]: any;
}

const DIR = join(__dirname, '..', '..', 'fixtures', 'conv');
const load = (file: string): Case[] => JSON.parse(readFileSync(join(DIR, file), 'utf8')).cases;

beforeAll(async () => {
  await init();
});

function forward(c: Case, t: Record<string, Tensor | null>): Tensor {
  const p = c.params;
  switch (c.op) {
    case 'conv2d':
      return conv2d(t.x!, t.w!, t.b, { stride: p.stride, padding: p.padding, dilation: p.dilation, groups: p.groups, activation: p.activation ?? undefined });
    case 'conv_transpose2d':
      return convTranspose2d(t.x!, t.w!, t.b, { stride: p.stride, padding: p.padding, outputPadding: p.output_padding, dilation: p.dilation, groups: p.groups });
    case 'max_pool2d':
      return maxPool2d(t.x!, { kernelSize: p.kernel_size, stride: p.stride, padding: p.padding, ceilMode: p.ceil_mode });
    case 'avg_pool2d':
      return avgPool2d(t.x!, { kernelSize: p.kernel_size, stride: p.stride, padding: p.padding, ceilMode: p.ceil_mode, countIncludePad: p.count_include_pad });
    case 'adaptive_avg_pool2d':
      return adaptiveAvgPool2d(t.x!, p.output_size);
    case 'interpolate_nearest':
      return upsampleNearest2d(t.x!, p.scale_factor);
    case 'interpolate_bilinear':
      return interpolateBilinear(t.x!, p.size ? { size: p.size } : { scaleFactor: p.scale_factor });
    default:
      throw new Error(`unknown fixture op ${c.op}`);
  }
}

function relErr(actual: ArrayLike<number>, expected: number[]): number {
  expect(actual.length).toBe(expected.length);
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxErr / Math.max(maxRef, 1e-30);
}

for (const file of ['conv2d.json', 'conv_transpose2d.json', 'pool.json', 'interpolate.json']) {
  describe(`PyTorch parity: ${file}`, () => {
    for (const c of load(file)) {
      it(c.name, async () => {
        const names = ['x', 'w', 'b'].filter((k) => c[k]);
        const t: Record<string, Tensor | null> = { x: null, w: null, b: null };
        for (const k of names) {
          t[k] = fromArray(c[k].data, c[k].shape);
          t[k]!.requiresGrad = true;
        }
        const y = forward(c, t);
        expect(y.shape).toEqual(c.y.shape);
        backward(sum(mul(y, fromArray(c.gy.data, c.gy.shape))));
        const errs: Record<string, number> = { y: relErr(await y.data(), c.y.data) };
        for (const k of names) errs[`g${k}`] = relErr(await t[k]!.grad!.data(), c[`g${k}`].data);
        for (const [k, e] of Object.entries(errs)) {
          expect(e, `${c.name}: ${k} relative error ${e.toExponential(2)} (all: ${JSON.stringify(errs)})`).toBeLessThanOrEqual(1e-4);
        }
        console.log(`parity ${c.name}: ${Object.entries(errs).map(([k, e]) => `${k} ${e.toExponential(1)}`).join(', ')}`);
      });
    }
  });
}
