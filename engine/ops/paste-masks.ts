// Detectron2 paste_masks_in_image on the GPU (inference only, no gradient): R x R mask
// probabilities pasted at their boxes into [N, H, W] image masks, bilinear (grid_sample,
// align_corners=False, zero padding) then `>= threshold`. Boxes are used as given (Detectron2
// clips them in detector_postprocess before pasting; this op does not clip).
//
// Two forms:
//   pasteMasksInImage  the full [N, H, W] tensor (every pixel of every image sampled);
//   pasteMasksPacked   binary only: each detection's pixels inside its region (below), packed 32
//                      per u32 and chunked under the storage-binding limit; readPackedMasks reads
//                      them back as per-detection MaskRegions. The bits are identical to the full
//                      form's: outside the region every bilinear tap is out of the mask (sample 0,
//                      below any positive threshold).
import { empty, fromArray, type Tensor } from '../tensor';
import { rt } from '../../runtime/runtime';
import { mapRaw } from './elementwise';
import { launchPasteMasks, launchPasteMasksPacked } from '../../kernels/detection/paste-masks';

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

/** [N, R, R] of masks given as [N, R, R] or [N, 1, R, R], checked against boxes [N, 4]. */
function maskShape(op: string, masks: Tensor, boxCount: number): [number, number, number] {
  const m = masks.ndim === 4 && masks.shape[1] === 1 ? masks.shape.filter((_, i) => i !== 1) : masks.shape;
  if (m.length !== 3) throw new Error(`${op}: masks must be [N, R, R] or [N, 1, R, R], got [${masks.shape}]`);
  if (m[1] !== m[2]) throw new Error(`${op}: only square masks are supported (as Detectron2), got [${masks.shape}]`);
  if (boxCount !== m[0]) throw new Error(`${op}: boxes must be [${m[0]}, 4], got ${boxCount} boxes`);
  if (masks.dtype !== 'f32') throw new Error(`${op}: masks must be f32`);
  return m as [number, number, number];
}

function checkImageSize(op: string, imageSize: readonly [number, number]): [number, number] {
  const [h, w] = imageSize;
  if (!(Number.isInteger(h) && Number.isInteger(w) && h >= 0 && w >= 0)) throw new Error(`${op}: image size must be two non-negative integers, got [${imageSize}]`);
  return [h, w];
}

/** masks [N, R, R] (or [N, 1, R, R]), boxes [N, 4] (x0, y0, x1, y1) -> bool [N, H, W] (or f32). */
export function pasteMasksInImage(masks: Tensor, boxes: Tensor, imageSize: readonly [number, number], opts: PasteMasksOptions = {}): Tensor {
  const op = 'pasteMasksInImage';
  if (boxes.ndim !== 2 || boxes.shape[1] !== 4) throw new Error(`${op}: boxes must be [N, 4], got [${boxes.shape}]`);
  const m = maskShape(op, masks, boxes.shape[0]!);
  if (boxes.dtype !== 'f32') throw new Error(`${op}: masks and boxes must be f32`);
  const n = m[0];
  const [h, w] = checkImageSize(op, imageSize);
  const threshold = opts.threshold ?? 0.5;
  const binary = threshold >= 0;
  const md = denseFromZero(masks);
  const bd = denseFromZero(boxes);
  const out = empty([n, h, w], binary ? 'bool' : 'f32');
  if (n * h * w > 0) launchPasteMasks(md.buffer, bd.buffer, out.buffer, n, m[1], m[2], h, w, binary ? threshold : null, !!opts.cpuRegion);
  if (md !== masks) md.dispose();
  if (bd !== boxes) bd.dispose();
  return out;
}

/** A binary mask stored only inside a rectangle of the image: pixels outside it are 0. */
export interface MaskRegion {
  x0: number;
  y0: number;
  width: number;
  height: number;
  /** width * height values, 0/1, row-major. */
  data: Uint8Array;
}

/**
 * The pixel rectangle [x0, x1) x [y0, y1) outside which a box's pasted mask is 0 at `threshold`:
 * the pixels whose bilinear taps can reach the R x R mask (ix in [-1, R), in exact arithmetic
 * px >= x0 - 0.5 - 0.5 w / R and px < x0 + w - 0.5 + 0.5 w / R, w = x1 - x0 in f32), one more pixel
 * on each side for the kernel's f32 rounding, intersected with the image (and with Detectron2's CPU
 * region when `cpuRegion`). That is the box plus about 1 + w / 2R pixels: Detectron2's CPU margin of
 * one pixel is not enough to be exact for boxes wider than 2R. The whole image when the threshold is
 * not positive (zeros pass it) or the box is degenerate (non-finite, or a side <= 1e-20: the full
 * form's sample there is whatever its inf/NaN arithmetic gives, so it is kept pixel for pixel).
 */
export function pasteRegion(box: ArrayLike<number>, maskSize: number, imageSize: readonly [number, number], threshold = 0.5, cpuRegion = false): [number, number, number, number] {
  const [h, w] = imageSize;
  const bx0 = box[0]!;
  const by0 = box[1]!;
  const bx1 = box[2]!;
  const by1 = box[3]!;
  // The kernel computes x1 - x0 in f32.
  const bw = Math.fround(bx1 - bx0);
  const bh = Math.fround(by1 - by0);
  const ok = (v: number) => Number.isFinite(v);
  if (!(Math.fround(threshold) > 0) || ![bx0, by0, bx1, by1, bw, bh].every(ok) || !(bw > 1e-20 && bh > 1e-20)) return [0, 0, w, h];
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  let x0 = clamp(Math.floor(bx0 - 0.5 - (0.5 * bw) / maskSize) - 1, w);
  let x1 = clamp(Math.ceil(bx0 + bw - 0.5 + (0.5 * bw) / maskSize) + 1, w);
  let y0 = clamp(Math.floor(by0 - 0.5 - (0.5 * bh) / maskSize) - 1, h);
  let y1 = clamp(Math.ceil(by0 + bh - 0.5 + (0.5 * bh) / maskSize) + 1, h);
  if (cpuRegion) {
    x0 = Math.max(x0, clamp(Math.floor(bx0) - 1, w));
    x1 = Math.min(x1, clamp(Math.ceil(bx1) + 1, w));
    y0 = Math.max(y0, clamp(Math.floor(by0) - 1, h));
    y1 = Math.min(y1, clamp(Math.ceil(by1) + 1, h));
  }
  if (x1 <= x0 || y1 <= y0) return [0, 0, 0, 0];
  return [x0, y0, x1, y1];
}

export interface PackedMaskChunk {
  /** Detections [first, first + count), words [wordBase, wordBase + bits.numel) of the whole. */
  first: number;
  count: number;
  wordBase: number;
  /** u32 words; bit b of word k is pixel 32 (k - start) + b of its detection's region (row-major). */
  bits: Tensor;
}

export interface PackedMasks {
  imageSize: [number, number];
  /** Per detection its region x0, y0, width, height. */
  regions: Int32Array;
  /** Per detection the index of its first word; [N] = the total. */
  wordStarts: Float64Array;
  chunks: PackedMaskChunk[];
}

export interface PasteMasksPackedOptions {
  /** Binarisation threshold (>=), default 0.5; must be a number (this form is binary only). */
  threshold?: number;
  /** As PasteMasksOptions.cpuRegion. */
  cpuRegion?: boolean;
  /** Largest output buffer of one chunk in bytes; default min(32 MiB, the storage-binding limit). */
  maxChunkBytes?: number;
}

const DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024;

/**
 * Binary paste of masks [N, R, R] (or [N, 1, R, R]) at host boxes [N * 4] (x0, y0, x1, y1),
 * each detection's pixels only inside its pasteRegion, bit-packed: the same bits as
 * pasteMasksInImage's, 1/32 of the bytes, never one binding over the limit. No readback
 * (readPackedMasks does it).
 */
export function pasteMasksPacked(masks: Tensor, boxes: ArrayLike<number>, imageSize: readonly [number, number], opts: PasteMasksPackedOptions = {}): PackedMasks {
  const op = 'pasteMasksPacked';
  if (boxes.length % 4) throw new Error(`${op}: boxes must be [N * 4], got ${boxes.length} values`);
  const n = boxes.length / 4;
  const [, r] = maskShape(op, masks, n);
  const [h, w] = checkImageSize(op, imageSize);
  const threshold = opts.threshold ?? 0.5;
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) throw new Error(`${op}: threshold must be a number, got ${threshold}`);
  const cpuRegion = !!opts.cpuRegion;
  // The binding limit tests may lower (kernels/large.ts), less a window's alignment slack.
  const limit = rt().bindingLimit - 512;
  const maxWords = Math.floor(Math.min(opts.maxChunkBytes ?? DEFAULT_CHUNK_BYTES, limit) / 4);
  if (!(maxWords >= 1)) throw new Error(`${op}: maxChunkBytes must be at least 4, got ${opts.maxChunkBytes}`);

  const b32 = Float32Array.from(boxes);
  const regions = new Int32Array(4 * n);
  const wordStarts = new Float64Array(n + 1);
  // regions[2j] = (x0, y0, width, height), regions[2j + 1] = (first word, 0, 0, 0): see the kernel.
  const gpuRegions = new Uint32Array(8 * n);
  for (let j = 0; j < n; j++) {
    const [x0, y0, x1, y1] = pasteRegion(b32.subarray(4 * j, 4 * j + 4), r, [h, w], threshold, cpuRegion);
    const words = Math.ceil(((x1 - x0) * (y1 - y0)) / 32);
    if (words > maxWords) throw new Error(`${op}: one mask region of ${x1 - x0}x${y1 - y0} pixels needs ${4 * words} bytes, over the chunk limit of ${4 * maxWords}`);
    regions.set([x0, y0, x1 - x0, y1 - y0], 4 * j);
    wordStarts[j + 1] = wordStarts[j]! + words;
    gpuRegions.set([x0, y0, x1 - x0, y1 - y0, wordStarts[j]!, 0, 0, 0], 8 * j);
  }
  if (wordStarts[n]! >= 2 ** 32) throw new Error(`${op}: ${wordStarts[n]} output words do not fit u32 word indices`);
  const chunks: PackedMaskChunk[] = [];
  if (wordStarts[n]! === 0) return { imageSize: [h, w], regions, wordStarts, chunks };

  const md = denseFromZero(masks);
  const bd = fromArray(b32, [n, 4]);
  const rd = fromArray(gpuRegions, [2 * n, 4], 'u32');
  // Greedy chunks of whole detections, each at most maxWords words.
  let first = 0;
  while (first < n) {
    let end = first;
    while (end < n && wordStarts[end + 1]! - wordStarts[first]! <= maxWords) end++;
    const words = wordStarts[end]! - wordStarts[first]!;
    if (words > 0) {
      const bits = empty([words], 'u32');
      launchPasteMasksPacked(md.buffer, bd.buffer, rd.buffer, bits.buffer, first, end - first, wordStarts[first]!, words, r, r, threshold, cpuRegion);
      chunks.push({ first, count: end - first, wordBase: wordStarts[first]!, bits });
    }
    first = end;
  }
  if (md !== masks) md.dispose();
  bd.dispose();
  rd.dispose();
  return { imageSize: [h, w], regions, wordStarts, chunks };
}

/** Reads the chunks back (and disposes them): one MaskRegion per detection. */
export async function readPackedMasks(p: PackedMasks): Promise<MaskRegion[]> {
  const n = p.regions.length / 4;
  const out: MaskRegion[] = [];
  for (let j = 0; j < n; j++) {
    const width = p.regions[4 * j + 2]!;
    const height = p.regions[4 * j + 3]!;
    out.push({ x0: p.regions[4 * j]!, y0: p.regions[4 * j + 1]!, width, height, data: new Uint8Array(width * height) });
  }
  try {
    for (const c of p.chunks) {
      const words = (await c.bits.data()) as Uint32Array;
      for (let j = c.first; j < c.first + c.count; j++) {
        const d = out[j]!.data;
        const base = p.wordStarts[j]! - c.wordBase;
        for (let k = 0; k < d.length; k++) d[k] = (words[base + (k >>> 5)]! >>> (k & 31)) & 1;
      }
    }
  } finally {
    for (const c of p.chunks) c.bits.dispose();
  }
  return out;
}

/** The full H x W row-major 0/1 mask of a region. */
export function regionToMask(r: MaskRegion, imageSize: readonly [number, number]): Uint8Array {
  const [h, w] = imageSize;
  if (r.x0 < 0 || r.y0 < 0 || r.x0 + r.width > w || r.y0 + r.height > h) throw new Error(`regionToMask: region ${r.width}x${r.height} at (${r.x0}, ${r.y0}) lies outside the ${w}x${h} image`);
  const m = new Uint8Array(h * w);
  for (let y = 0; y < r.height; y++) m.set(r.data.subarray(y * r.width, (y + 1) * r.width), (r.y0 + y) * w + r.x0);
  return m;
}
