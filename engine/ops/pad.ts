// Constant padding of the last k dims, like torch.nn.functional.pad(x, pads, value=v):
// pads = [left_last, right_last, left_2nd_last, right_2nd_last, ...]; a negative amount crops.
// Forward: fill the output with the value, then a strided copy of the kept region of the input
// into its place. Backward: the same region of the gradient (a view when nothing was cropped,
// otherwise copied into zeros of the input's shape).
import { record } from '../autograd';
import { full, type Tensor, zeros } from '../tensor';
import { launchMap } from '../../kernels/elementwise/map';

interface Region {
  /** Start of the kept region in the input and in the output, per dim, and its length. */
  inStart: number[];
  outStart: number[];
  length: number[];
}

function regionView(t: Tensor, start: readonly number[], length: readonly number[]): Tensor {
  let offset = t.offset;
  for (let d = 0; d < t.ndim; d++) offset += start[d]! * t.strides[d]!;
  return t.viewAs(length, t.strides, offset);
}

export function pad(t: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0) throw new Error(`pad: needs an even number of amounts (left, right per dim), got ${pads.length}`);
  const k = pads.length / 2;
  if (k > t.ndim) throw new Error(`pad: ${pads.length} amounts pad ${k} dims but the tensor [${t.shape}] has ${t.ndim}`);
  if (pads.some((p) => !Number.isInteger(p))) throw new Error(`pad: amounts must be integers, got [${pads}]`);
  const outShape = [...t.shape];
  const region: Region = { inStart: t.shape.map(() => 0), outStart: t.shape.map(() => 0), length: [...t.shape] };
  let crops = false;
  for (let j = 0; j < k; j++) {
    const d = t.ndim - 1 - j;
    const left = pads[2 * j]!;
    const right = pads[2 * j + 1]!;
    const n = t.shape[d]!;
    outShape[d] = n + left + right;
    if (outShape[d]! < 0) throw new Error(`pad: amounts (${left}, ${right}) make dim ${d} of [${t.shape}] negative (${outShape[d]})`);
    region.inStart[d] = Math.max(0, -left);
    region.outStart[d] = Math.max(0, left);
    region.length[d] = Math.max(0, n - Math.max(0, -left) - Math.max(0, -right));
    if (left < 0 || right < 0) crops = true;
  }
  const out = full(outShape, value, t.dtype);
  const empty = region.length.some((n) => n === 0);
  if (!empty) {
    const src = regionView(t, region.inStart, region.length);
    const dst = regionView(out, region.outStart, region.length);
    launchMap({ name: 'copy', expr: 'a', inputs: [src], out: dst });
    src.dispose();
    dst.dispose();
  }
  return record(out, 'pad', [t], (g) => {
    const kept = regionView(g, region.outStart, region.length);
    if (!crops) return [kept]; // every input element is in the output: the gradient is a view
    const gx = zeros(t.shape, g.dtype);
    if (!empty) {
      const target = regionView(gx, region.inStart, region.length);
      launchMap({ name: 'copy', expr: 'a', inputs: [kept], out: target });
      target.dispose();
    }
    kept.dispose();
    return [gx];
  });
}
