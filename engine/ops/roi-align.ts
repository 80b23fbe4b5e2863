// ROIAlign as Detectron2's ROIAlignV2 (= torchvision roi_align with aligned=True): the -0.5 pixel
// shift, adaptive sampling (sampling_ratio 0 -> ceil(roi_size / output_size) samples per bin),
// Detectron2's bilinear boundary rules. Gradient flows to the features only (not to the boxes), as
// in Detectron2 and torchvision; the backward is a deterministic gather (kernels/detection/roi-align.ts).
import { record } from '../autograd';
import { empty, type Tensor, zeros } from '../tensor';
import { mapRaw, toF32 } from './elementwise';
import { launchRoiAlignBackward, launchRoiAlignForward } from '../../kernels/detection/roi-align';

export interface RoiAlignOptions {
  /** Output size: one number (square) or [height, width]. */
  outputSize: number | readonly [number, number];
  /** Feature-map scale relative to the box coordinates (1/stride). */
  spatialScale: number;
  /** Samples per bin along each axis; 0 (default) = adaptive ceil(roi_size / output_size). */
  samplingRatio?: number;
  /** Half-pixel shift (Detectron2 ROIAlignV2). Default true. */
  aligned?: boolean;
}

/** A view whose data start at element 0 of a dense buffer (the kernels index from 0). */
function denseFromZero(t: Tensor): Tensor {
  if (t.isContiguous() && t.offset === 0) return t;
  return mapRaw('copy', 'x', [t], t.shape, t.dtype, 'f32');
}

/**
 * Pool `input` [N, C, H, W] at `rois` [K, 5] = (batch index, x0, y0, x1, y1) into [K, C, PH, PW].
 * A ROI with a batch index outside [0, N) gives zeros (the reference kernels read out of bounds).
 */
export function roiAlign(input: Tensor, rois: Tensor, opts: RoiAlignOptions): Tensor {
  if (input.ndim !== 4) throw new Error(`roiAlign: expected input [N, C, H, W], got [${input.shape}]`);
  // No f16 kernel: f16 features (autocast) are pooled in f32.
  input = toF32(input);
  if (rois.ndim !== 2 || rois.shape[1] !== 5) throw new Error(`roiAlign: expected rois [K, 5] (batch index, x0, y0, x1, y1), got [${rois.shape}]`);
  if (input.dtype !== 'f32' || rois.dtype !== 'f32') throw new Error(`roiAlign: expected f32 input and rois, got ${input.dtype} and ${rois.dtype}`);
  const [pooledH, pooledW] = typeof opts.outputSize === 'number' ? [opts.outputSize, opts.outputSize] : opts.outputSize;
  if (!(pooledH > 0 && pooledW > 0 && Number.isInteger(pooledH) && Number.isInteger(pooledW))) {
    throw new Error(`roiAlign: output size must be positive integers, got ${JSON.stringify(opts.outputSize)}`);
  }
  const samplingRatio = opts.samplingRatio ?? 0;
  if (!Number.isInteger(samplingRatio) || samplingRatio < 0) throw new Error(`roiAlign: samplingRatio must be a non-negative integer, got ${samplingRatio}`);
  const aligned = opts.aligned ?? true;
  const [batch, channels, height, width] = input.shape as [number, number, number, number];
  const dims = { batch, channels, height, width, rois: rois.shape[0]!, pooledH, pooledW };
  const x = denseFromZero(input);
  const r = denseFromZero(rois);
  const out = empty([dims.rois, channels, pooledH, pooledW]);
  launchRoiAlignForward(x.buffer, r.buffer, out.buffer, dims, opts.spatialScale, samplingRatio, aligned);
  if (x !== input) x.dispose();
  return record(out, 'roiAlign', [input], (g) => {
    const gc = denseFromZero(g);
    const gradIn = dims.rois === 0 ? zeros(input.shape) : empty(input.shape);
    if (dims.rois > 0) launchRoiAlignBackward(gc.buffer, r.buffer, gradIn.buffer, dims, opts.spatialScale, samplingRatio, aligned);
    if (gc !== g) gc.dispose();
    return [gradIn];
  });
}
