// Detectron2 paste_masks_in_image on the GPU (inference only, no gradient): R x R mask
// probabilities pasted at their boxes into [N, H, W] image masks, bilinear (grid_sample,
// align_corners=False, zero padding) then `>= threshold`. Boxes are used as given (Detectron2
// clips them in detector_postprocess before pasting; this op does not clip).
import { empty, type Tensor } from '../tensor';
import { mapRaw } from './elementwise';
import { launchPasteMasks } from '../../kernels/paste-masks';

export interface PasteMasksOptions {
  /** Binarisation threshold (>=); a negative value returns the soft f32 probabilities. Default 0.5. */
  threshold?: number;
  /**
   * Reproduce Detectron2's CPU path, which pastes each mask only inside
   * [floor(x0) - 1, ceil(x1) + 1) x [floor(y0) - 1, ceil(y1) + 1) and leaves zeros elsewhere. The
   * default (false) is its GPU path: every pixel of the image is sampled.
   */
  cpuRegion?: boolean;
}

function denseFromZero(t: Tensor): Tensor {
  if (t.isContiguous() && t.offset === 0) return t;
  return mapRaw('copy', 'x', [t], t.shape, 'f32', 'f32');
}

/** masks [N, R, R] (or [N, 1, R, R]), boxes [N, 4] (x0, y0, x1, y1) -> bool [N, H, W] (or f32). */
export function pasteMasksInImage(masks: Tensor, boxes: Tensor, imageSize: readonly [number, number], opts: PasteMasksOptions = {}): Tensor {
  const op = 'pasteMasksInImage';
  const m = masks.ndim === 4 && masks.shape[1] === 1 ? masks.shape.filter((_, i) => i !== 1) : masks.shape;
  if (m.length !== 3) throw new Error(`${op}: masks must be [N, R, R] or [N, 1, R, R], got [${masks.shape}]`);
  if (m[1] !== m[2]) throw new Error(`${op}: only square masks are supported (as Detectron2), got [${masks.shape}]`);
  const n = m[0]!;
  if (boxes.ndim !== 2 || boxes.shape[1] !== 4 || boxes.shape[0] !== n) throw new Error(`${op}: boxes must be [${n}, 4], got [${boxes.shape}]`);
  if (masks.dtype !== 'f32' || boxes.dtype !== 'f32') throw new Error(`${op}: masks and boxes must be f32`);
  const [h, w] = imageSize;
  if (!(Number.isInteger(h) && Number.isInteger(w) && h >= 0 && w >= 0)) throw new Error(`${op}: image size must be two non-negative integers, got [${imageSize}]`);
  const threshold = opts.threshold ?? 0.5;
  const binary = threshold >= 0;
  const md = denseFromZero(masks);
  const bd = denseFromZero(boxes);
  const out = empty([n, h, w], binary ? 'bool' : 'f32');
  if (n * h * w > 0) launchPasteMasks(md.buffer, bd.buffer, out.buffer, n, m[1]!, m[2]!, h, w, binary ? threshold : null, !!opts.cpuRegion);
  if (md !== masks) md.dispose();
  if (bd !== boxes) bd.dispose();
  return out;
}
