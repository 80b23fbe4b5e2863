// FCOS locations (CenterMask2 `FCOS.compute_locations`): the image-space point each feature cell
// predicts for. Cell (i, j) of a level with stride s sits at x = j*s + floor(s/2),
// y = i*s + floor(s/2), flattened row-major (y outer, x inner). Locations may lie in the padding.
// They are computed on the CPU: target assignment (CPU) and inference decoding (GPU, uploaded)
// both need them, and they are exact small integers in f32.

/** Spatial size of one feature level (the last two dims of an [N, C, H, W] map). */
export interface LevelShape {
  height: number;
  width: number;
}

/** Per-level [H*W, 2] (x, y) locations, row-major, as flat Float32Arrays of length 2*H*W. */
export function computeLocations(featureShapes: readonly LevelShape[], strides: readonly number[]): Float32Array[] {
  if (featureShapes.length !== strides.length) {
    throw new Error(`computeLocations: ${featureShapes.length} feature levels but ${strides.length} strides`);
  }
  return featureShapes.map(({ height, width }, level) => {
    const s = strides[level]!;
    if (!Number.isInteger(s) || s <= 0) throw new Error(`computeLocations: stride of level ${level} must be a positive integer, got ${s}`);
    if (!Number.isInteger(height) || !Number.isInteger(width) || height < 0 || width < 0) {
      throw new Error(`computeLocations: level ${level} needs a non-negative integer size, got ${height}x${width}`);
    }
    const half = Math.floor(s / 2);
    const out = new Float32Array(height * width * 2);
    for (let i = 0; i < height; i++) {
      for (let j = 0; j < width; j++) {
        const k = (i * width + j) * 2;
        out[k] = j * s + half;
        out[k + 1] = i * s + half;
      }
    }
    return out;
  });
}

/** Level shapes from per-level [N, C, H, W] shapes (e.g. the head's outputs). */
export function levelShapesOf(shapes: readonly (readonly number[])[]): LevelShape[] {
  return shapes.map((shape, level) => {
    if (shape.length !== 4) throw new Error(`levelShapesOf: level ${level} must be [N, C, H, W], got [${shape}]`);
    return { height: shape[2]!, width: shape[3]! };
  });
}
