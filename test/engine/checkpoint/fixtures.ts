// Shared by the checkpoint reader tests: the files written by
// scripts/fixtures/make_checkpoint_fixtures.py (real torch/numpy) and their expected contents.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { halfBitsToFloat } from '../../../engine/checkpoint/f16';
import type { HostTensor } from '../../../engine/checkpoint/host-tensor';

export const fixturePath = (name: string): string =>
  new URL(`../../fixtures/checkpoints/${name}`, import.meta.url).pathname;

export const fixtureBytes = (name: string): Uint8Array => new Uint8Array(readFileSync(fixturePath(name)));

interface Expected {
  dtype: string;
  shape: number[];
  values: (number | string | boolean)[];
}

const EXPECTED = JSON.parse(readFileSync(fixturePath('expected.json'), 'utf8')) as Record<string, Record<string, Expected>>;

/** Compares every tensor, in order, bit-exactly with what Python recorded. */
export function expectFixtureTensors(fixture: string, tensors: Map<string, HostTensor>): void {
  const want = EXPECTED[fixture]!;
  expect([...tensors.keys()]).toEqual(Object.keys(want).sort((a, b) => order(fixture, a) - order(fixture, b)));
  for (const [name, t] of tensors) {
    const e = want[name]!;
    expect(t.dtype, name).toBe(e.dtype);
    expect(t.shape, name).toEqual(e.shape);
    const got = Array.from(t.data as ArrayLike<number | bigint>, (v) =>
      t.dtype === 'I64' ? String(v) : t.dtype === 'BOOL' ? v !== 0 : t.dtype === 'F16' ? halfBitsToFloat(v as number) : v,
    );
    expect(got, name).toEqual(e.values);
  }
}

// expected.json is written with sorted keys; the checkpoints keep the insertion order the
// generator used, which is recorded here so that the order of the loaded map is checked too.
const INSERTION: Record<string, string[]> = {
  torch: [
    'backbone.bottom_up.stem.stem_1/conv.weight', 'backbone.fpn_lateral3.bias', 'views.base', 'views.transposed',
    'views.narrow', 'views.strided', 'dtypes.f16', 'dtypes.f64', 'dtypes.i64', 'dtypes.i32', 'dtypes.i8', 'dtypes.u8',
    'dtypes.bool', 'bn.num_batches_tracked', 'empty',
  ],
  numpy: [
    'backbone.bottom_up.stem.conv1.weight', 'backbone.bottom_up.stem.conv1.norm.running_var',
    'roi_heads.box_predictor.cls_score.bias', 'fortran', 'big_endian', 'scalar', 'half',
  ],
};

function order(fixture: string, name: string): number {
  return INSERTION[fixture.endsWith('.pkl') ? 'numpy' : 'torch']!.indexOf(name);
}
