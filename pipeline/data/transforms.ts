// Detectron2's training/test geometry for one image: ResizeShortestEdge (output size rule, a
// PIL-faithful bilinear resize of the 8-bit image) and horizontal/vertical flips, applied to the
// image, the polygons and the boxes consistently. Coordinates are continuous (pixel (x, y) covers
// [x, x+1) x [y, y+1)), so a resize scales them and a flip maps x -> w - x, as Detectron2's
// ResizeTransform.apply_coords / HFlipTransform.apply_coords do. A RandomCrop window (INPUT.CROP)
// comes first; bitmasks (INPUT.MASK_FORMAT bitmask) follow with PIL's nearest-neighbour resize.
import { tightenCrop, type MaskCrop } from '../../structures/mask-crop';

/** ResizeShortestEdge.get_output_shape: short side to `short`, long side capped at `maxSize`,
 *  each rounded with int(x + 0.5). Returns [newHeight, newWidth]. */
export function resizeShortestEdgeShape(height: number, width: number, short: number, maxSize: number): [number, number] {
  if (!(height > 0 && width > 0)) throw new Error(`resizeShortestEdgeShape: image size ${width}x${height} must be positive`);
  if (!(short > 0)) throw new Error(`resizeShortestEdgeShape: short edge ${short} must be positive`);
  const scale = short / Math.min(height, width);
  let newh: number;
  let neww: number;
  if (height < width) [newh, neww] = [short, scale * width];
  else [newh, neww] = [scale * height, short];
  if (Math.max(newh, neww) > maxSize) {
    const s = maxSize / Math.max(newh, neww);
    newh *= s;
    neww *= s;
  }
  return [Math.trunc(newh + 0.5), Math.trunc(neww + 0.5)];
}

// --- PIL Image.resize(BILINEAR) for 8-bit images (Pillow's Resample.c) -----------------------
// Separable triangle filter whose support grows with the downscale factor (antialias), fixed-point
// coefficients with 22 fraction bits, horizontal pass first, each pass rounded and clipped to uint8.
const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  bounds: Int32Array; // per output index: first input index, count
  k: Int32Array; // per output index: `ksize` fixed-point weights
  ksize: number;
}

function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1.0 * filterscale; // bilinear filter support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Int32Array(outSize * ksize);
  const kk = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      kk[x] = w;
      total += w;
    }
    for (let x = 0; x < ksize; x++) {
      const w = x < xmax && total !== 0 ? kk[x]! / total : 0;
      // Pillow: (int)(0.5 + w * (1 << PRECISION_BITS)) for w >= 0, (int)(-0.5 + ...) otherwise
      k[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, k, ksize };
}

const clip8 = (v: number) => {
  const r = Math.floor(v / (1 << PRECISION_BITS));
  return r < 0 ? 0 : r > 255 ? 255 : r;
};

/** Resize a row-major 8-bit single-channel image as PIL's Image.resize((w, h), BILINEAR). */
export function resizeBilinearU8(src: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  if (src.length !== width * height) throw new Error(`resizeBilinearU8: ${src.length} bytes for a ${width}x${height} image`);
  if (!(outWidth > 0 && outHeight > 0)) throw new Error(`resizeBilinearU8: output size ${outWidth}x${outHeight} must be positive`);
  if (outWidth === width && outHeight === height) return src.slice();
  let cur = src;
  let curW = width;
  if (outWidth !== width) {
    const c = precomputeCoeffs(width, outWidth);
    const out = new Uint8Array(outWidth * height);
    const half = 1 << (PRECISION_BITS - 1);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = c.bounds[xx * 2]!;
        const n = c.bounds[xx * 2 + 1]!;
        let ss = half;
        for (let x = 0; x < n; x++) ss += cur[row + xmin + x]! * c.k[xx * c.ksize + x]!;
        out[y * outWidth + xx] = clip8(ss);
      }
    }
    cur = out;
    curW = outWidth;
  }
  if (outHeight !== height) {
    const c = precomputeCoeffs(height, outHeight);
    const out = new Uint8Array(curW * outHeight);
    const half = 1 << (PRECISION_BITS - 1);
    for (let yy = 0; yy < outHeight; yy++) {
      const ymin = c.bounds[yy * 2]!;
      const n = c.bounds[yy * 2 + 1]!;
      for (let x = 0; x < curW; x++) {
        let ss = half;
        for (let y = 0; y < n; y++) ss += cur[(ymin + y) * curW + x]! * c.k[yy * c.ksize + y]!;
        out[yy * curW + x] = clip8(ss);
      }
    }
    cur = out;
  }
  return cur;
}

// --- Flips and coordinate maps --------------------------------------------------------------

export interface Flip {
  horizontal: boolean;
  vertical: boolean;
}

export const NO_FLIP: Flip = { horizontal: false, vertical: false };

/** Flipped copy of a row-major single-channel image. */
export function flipImageU8(src: Uint8Array, width: number, height: number, flip: Flip): Uint8Array {
  if (!flip.horizontal && !flip.vertical) return src;
  const out = new Uint8Array(src.length);
  for (let y = 0; y < height; y++) {
    const sy = flip.vertical ? height - 1 - y : y;
    for (let x = 0; x < width; x++) out[y * width + x] = src[sy * width + (flip.horizontal ? width - 1 - x : x)]!;
  }
  return out;
}

/** A crop window in the input image (integer pixels). */
export interface CropWindow {
  x0: number;
  y0: number;
  width: number;
  height: number;
}

/** The geometry applied to one image: crop (optional), scale (resize) then flip, in the output
 *  image's frame. */
export interface Geometry {
  inWidth: number;
  inHeight: number;
  /** Applied first (Detectron2 inserts RandomCrop before ResizeShortestEdge). */
  crop?: CropWindow;
  outWidth: number;
  outHeight: number;
  flip: Flip;
}

/** Map a flat [x0, y0, x1, y1, ...] polygon through the geometry (a new array). */
export function transformPolygon(poly: readonly number[], g: Geometry): number[] {
  if (poly.length % 2 !== 0) throw new Error(`transformPolygon: a polygon needs x,y pairs, got ${poly.length} numbers`);
  const cx = g.crop?.x0 ?? 0;
  const cy = g.crop?.y0 ?? 0;
  const sx = g.outWidth / (g.crop?.width ?? g.inWidth);
  const sy = g.outHeight / (g.crop?.height ?? g.inHeight);
  const out = new Array<number>(poly.length);
  for (let i = 0; i < poly.length; i += 2) {
    let x = g.crop ? (poly[i]! - cx) * sx : poly[i]! * sx;
    let y = g.crop ? (poly[i + 1]! - cy) * sy : poly[i + 1]! * sy;
    if (g.flip.horizontal) x = g.outWidth - x;
    if (g.flip.vertical) y = g.outHeight - y;
    out[i] = x;
    out[i + 1] = y;
  }
  return out;
}

/** Map an XYXY box: its corners go through the geometry, the result is their min/max (apply_box),
 *  then clipped to [0, output size] as Detectron2's transform_instance_annotations does. */
export function transformBox(box: readonly number[], g: Geometry): [number, number, number, number] {
  const [a, b, c, d] = transformPolygon([box[0]!, box[1]!, box[2]!, box[3]!], g);
  return [
    Math.min(Math.max(Math.min(a!, c!), 0), g.outWidth),
    Math.min(Math.max(Math.min(b!, d!), 0), g.outHeight),
    Math.min(Math.max(Math.max(a!, c!), 0), g.outWidth),
    Math.min(Math.max(Math.max(b!, d!), 0), g.outHeight),
  ];
}

/**
 * A polygon clipped to a crop window (Sutherland-Hodgman against the four window edges), as
 * CropTransform.apply_polygons clips with shapely. A concave polygon cut into several pieces comes
 * back as one ring joined along the window edge: the joins have no area, so it rasterises the same.
 * Returns [] when less than 3 points remain.
 */
export function clipPolygonToWindow(poly: readonly number[], w: CropWindow): number[] {
  let pts: [number, number][] = [];
  for (let i = 0; i + 1 < poly.length; i += 2) pts.push([poly[i]!, poly[i + 1]!]);
  const x1 = w.x0 + w.width;
  const y1 = w.y0 + w.height;
  const edges: [(p: [number, number]) => boolean, (a: [number, number], b: [number, number]) => [number, number]][] = [
    [(p) => p[0] >= w.x0, (a, b) => [w.x0, a[1] + ((b[1] - a[1]) * (w.x0 - a[0])) / (b[0] - a[0])]],
    [(p) => p[0] <= x1, (a, b) => [x1, a[1] + ((b[1] - a[1]) * (x1 - a[0])) / (b[0] - a[0])]],
    [(p) => p[1] >= w.y0, (a, b) => [a[0] + ((b[0] - a[0]) * (w.y0 - a[1])) / (b[1] - a[1]), w.y0]],
    [(p) => p[1] <= y1, (a, b) => [a[0] + ((b[0] - a[0]) * (y1 - a[1])) / (b[1] - a[1]), y1]],
  ];
  for (const [inside, cut] of edges) {
    if (pts.length === 0) break;
    const out: [number, number][] = [];
    for (let i = 0; i < pts.length; i++) {
      const cur = pts[i]!;
      const prev = pts[(i + pts.length - 1) % pts.length]!;
      if (inside(cur)) {
        if (!inside(prev)) out.push(cut(prev, cur));
        out.push(cur);
      } else if (inside(prev)) out.push(cut(prev, cur));
    }
    pts = out;
  }
  return pts.length >= 3 ? pts.flat() : [];
}

// --- Bitmasks (INPUT.MASK_FORMAT "bitmask") ----------------------------------------------------

/**
 * The source index of each output column (or row) of PIL's Image.resize(NEAREST): Pillow's
 * ImagingScaleAffine walks xo = scale * 0.5, xo += scale (in double, accumulated, so a sample
 * point that lands on a pixel border in exact arithmetic goes where the running sum puts it) and
 * takes trunc(xo), clamped to the last pixel.
 */
export function pilNearestIndex(inSize: number, outSize: number): Int32Array {
  const scale = inSize / outSize;
  const out = new Int32Array(outSize);
  let xo = scale * 0.5;
  for (let x = 0; x < outSize; x++) {
    out[x] = Math.min(Math.trunc(xo), inSize - 1);
    xo += scale;
  }
  return out;
}

/**
 * A bitmask through the geometry, as Detectron2's apply_segmentation does: the crop cuts it, the
 * resize samples it with PIL's NEAREST (pilNearestIndex), the flip mirrors it. The result is tight
 * (empty when the crop left nothing).
 */
export function transformBitmask(m: MaskCrop, g: Geometry): MaskCrop {
  const cw = g.crop ?? { x0: 0, y0: 0, width: g.inWidth, height: g.inHeight };
  // Mask box in the cropped frame.
  const bx0 = m.x0 - cw.x0;
  const by0 = m.y0 - cw.y0;
  const xs = pilNearestIndex(cw.width, g.outWidth);
  const ys = pilNearestIndex(cw.height, g.outHeight);
  // The output range whose sources fall inside the mask box (sources are non-decreasing).
  const first = (idx: Int32Array, b: number) => {
    let i = 0;
    while (i < idx.length && idx[i]! < b) i++;
    return i;
  };
  const ox0 = first(xs, bx0);
  const ox1 = first(xs, bx0 + m.width);
  const oy0 = first(ys, by0);
  const oy1 = first(ys, by0 + m.height);
  const width = Math.max(0, ox1 - ox0);
  const height = Math.max(0, oy1 - oy0);
  const data = new Uint8Array(width * height);
  for (let oy = oy0; oy < oy1; oy++) {
    const row = (ys[oy]! - by0) * m.width;
    for (let ox = ox0; ox < ox1; ox++) data[(oy - oy0) * width + (ox - ox0)] = m.data[row + xs[ox]! - bx0]!;
  }
  let out: MaskCrop = { imageWidth: g.outWidth, imageHeight: g.outHeight, x0: ox0, y0: oy0, width, height, data };
  if (g.flip.horizontal || g.flip.vertical) {
    const f = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      const sy2 = g.flip.vertical ? height - 1 - y : y;
      for (let x = 0; x < width; x++) f[y * width + x] = data[sy2 * width + (g.flip.horizontal ? width - 1 - x : x)]!;
    }
    out = {
      ...out,
      x0: g.flip.horizontal ? g.outWidth - (ox0 + width) : ox0,
      y0: g.flip.vertical ? g.outHeight - (oy0 + height) : oy0,
      data: f,
    };
  }
  return tightenCrop(out);
}

/** BitMasks.get_bounding_boxes: [min col, min row, max col + 1, max row + 1] of a tight mask. */
export function bitmaskBox(m: MaskCrop): [number, number, number, number] {
  return m.width === 0 ? [0, 0, 0, 0] : [m.x0, m.y0, m.x0 + m.width, m.y0 + m.height];
}

/** Pixels of a row-major 8-bit image inside a window. */
export function cropImageU8(src: Uint8Array, width: number, w: CropWindow): Uint8Array {
  const out = new Uint8Array(w.width * w.height);
  for (let y = 0; y < w.height; y++) out.set(src.subarray((w.y0 + y) * width + w.x0, (w.y0 + y) * width + w.x0 + w.width), y * w.width);
  return out;
}

/** Gray image -> CHW float32 with 3 identical channels (BGR of a gray image), values 0..255. */
export function grayToChw3(gray: Uint8Array, width: number, height: number): Float32Array {
  const n = width * height;
  if (gray.length !== n) throw new Error(`grayToChw3: ${gray.length} bytes for a ${width}x${height} image`);
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const v = gray[i]!;
    out[i] = v;
    out[n + i] = v;
    out[2 * n + i] = v;
  }
  return out;
}
