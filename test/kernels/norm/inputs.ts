// Inputs for the normalisation tests (test/kernels/norm/, test/models/vovnet-norm.test.ts).
import { fromArray, permute, type Tensor } from '../../../engine';

/** Upload x [N,C,H,W] as a permuted (channels-last) view, so kernels see a non-contiguous input. */
export function permutedInput(x: Float64Array, [n, c, h, w]: number[]): { leaf: Tensor; view: Tensor } {
  const nhwc = new Float32Array(x.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) {
    nhwc[((i * h + y) * w + z) * c + k] = x[((i * c + k) * h + y) * w + z]!;
  }
  const leaf = fromArray(nhwc, [n, h, w, c]);
  leaf.requiresGrad = true;
  return { leaf, view: permute(leaf, [0, 3, 1, 2]) };
}
