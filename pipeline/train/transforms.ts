// Detectron2's training/test geometry for one image: ResizeShortestEdge (output size rule, a
// PIL-faithful bilinear resize of the 8-bit image) and horizontal/vertical flips, applied to the
// image, the polygons and the boxes consistently. Coordinates are continuous (pixel (x, y) covers
// [x, x+1) x [y, y+1)), so a resize scales them and a flip maps x -> w - x, as Detectron2's
// ResizeTransform.apply_coords / HFlipTransform.apply_coords do.

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

/** The geometry applied to one image: scale (resize) then flip, in the output image's frame. */
export interface Geometry {
  inWidth: number;
  inHeight: number;
  outWidth: number;
  outHeight: number;
  flip: Flip;
}

/** Map a flat [x0, y0, x1, y1, ...] polygon through the geometry (a new array). */
export function transformPolygon(poly: readonly number[], g: Geometry): number[] {
  if (poly.length % 2 !== 0) throw new Error(`transformPolygon: a polygon needs x,y pairs, got ${poly.length} numbers`);
  const sx = g.outWidth / g.inWidth;
  const sy = g.outHeight / g.inHeight;
  const out = new Array<number>(poly.length);
  for (let i = 0; i < poly.length; i += 2) {
    let x = poly[i]! * sx;
    let y = poly[i + 1]! * sy;
    if (g.flip.horizontal) x = g.outWidth - x;
    if (g.flip.vertical) y = g.outHeight - y;
    out[i] = x;
    out[i + 1] = y;
  }
  return out;
}

/** Map an XYXY box: its corners go through the geometry, the result is their min/max (apply_box),
 *  then clipped above to the output size as Detectron2's transform_instance_annotations does. */
export function transformBox(box: readonly number[], g: Geometry): [number, number, number, number] {
  const [a, b, c, d] = transformPolygon([box[0]!, box[1]!, box[2]!, box[3]!], g);
  return [
    Math.min(Math.min(a!, c!), g.outWidth),
    Math.min(Math.min(b!, d!), g.outHeight),
    Math.min(Math.max(a!, c!), g.outWidth),
    Math.min(Math.max(b!, d!), g.outHeight),
  ];
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
