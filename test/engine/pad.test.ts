// Constant pad like torch.nn.functional.pad: per-side amounts on the last k dims, negative amounts
// crop, any fill value; forward and backward vs a host reference on contiguous and strided inputs.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import { Rng, expectClose, testSeed } from '../util';
import { download, type Host, type Layout, numel, randHost, unravelIndex, upload, ravelIndex } from './reference';

beforeAll(async () => {
  await cg.init();
});

/** Host pad: output index o maps to input index o - left per padded dim (outside: value). */
function padHost(h: Host, pads: number[], value: number): { out: Host; source: Int32Array } {
  const r = h.shape.length;
  const left = new Array<number>(r).fill(0);
  const shape = [...h.shape];
  for (let j = 0; j < pads.length / 2; j++) {
    const d = r - 1 - j;
    left[d] = pads[2 * j]!;
    shape[d] = h.shape[d]! + pads[2 * j]! + pads[2 * j + 1]!;
  }
  const data = new Float64Array(numel(shape)).fill(value);
  const source = new Int32Array(data.length).fill(-1); // input flat index of each output element
  for (let i = 0; i < data.length; i++) {
    const idx = unravelIndex(i, shape).map((o, d) => o - left[d]!);
    if (idx.every((v, d) => v >= 0 && v < h.shape[d]!)) {
      source[i] = ravelIndex(idx, h.shape);
      data[i] = h.data[source[i]!]!;
    }
  }
  return { out: { data, shape }, source };
}

describe('pad', () => {
  const CASES: [number[], number[], number, Layout][] = [
    [[3, 5], [1, 2], 0, 'contiguous'],
    [[3, 5], [2, 1, 0, 3], -1.5, 'transposed'],
    [[2, 3, 4], [1, 1, 2, 0, 1, 1], 0.25, 'strided'],
    [[4, 6], [-1, 2], 0, 'transposed'], // crop left, pad right
    [[4, 6], [-2, -1, 1, -1], 3, 'strided'], // crop and pad in two dims
    [[2, 3, 5], [0, 0, -1, -1], 0, 'contiguous'], // crop only, second-to-last dim
    [[3, 4], [-4, 1], 7, 'contiguous'], // everything cropped in one dim: all fill
  ];
  for (const [shape, pads, value, layout] of CASES) {
    it(`[${shape}] pads [${pads}] value ${value} ${layout}: forward and backward`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const what = `pad [${shape}] [${pads}] ${layout} (seed ${seed})`;
      const x = randHost(rng, shape);
      const xt = upload(x, layout, { requiresGrad: true });
      const y = cg.pad(xt, pads, value);
      const { out, source } = padHost(x, pads, value);
      expect(y.shape).toEqual(out.shape);
      expectClose(await download(y), out.data, { what: `${what} forward`, atol: 0, rtol: 0, shape: out.shape });
      const g = randHost(rng, out.shape);
      cg.backward(y, upload(g));
      const gx = new Float64Array(x.data.length);
      source.forEach((s, i) => {
        if (s >= 0) gx[s]! += g.data[i]!;
      });
      expectClose(await download(xt.grad!), gx, { what: `${what} grad`, atol: 0, rtol: 0, shape });
    });
  }

  it('integer tensors and clear errors', async () => {
    const x = cg.fromArray([1, 2, 3, 4], [2, 2], 'i32');
    const y = cg.pad(x, [1, 0, 0, 1], 9);
    expect(y.dtype).toBe('i32');
    expect(await y.toArray()).toEqual([9, 1, 2, 9, 3, 4, 9, 9, 9]);
    expect(() => cg.pad(x, [1])).toThrow(/pad: needs an even number of amounts/);
    expect(() => cg.pad(x, [1, 1, 1, 1, 1, 1])).toThrow(/pad: 6 amounts pad 3 dims but the tensor \[2,2\] has 2/);
    expect(() => cg.pad(x, [-2, -1])).toThrow(/make dim 1 of \[2,2\] negative \(-1\)/);
    expect(() => cg.pad(x, [0.5, 0])).toThrow(/amounts must be integers/);
  });
});
