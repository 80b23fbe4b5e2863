// Axis-aligned boxes as Detectron2 keeps them: flat float32 arrays of (x0, y0, x1, y1) per box, in
// pixels of the image they belong to.

const f = Math.fround;

/** detectron2 `pairwise_iou` in float32: [Na, Nb] row-major; 0 where the intersection is empty. */
export function pairwiseIou(a: Float32Array, b: Float32Array): Float32Array {
  const na = a.length / 4;
  const nb = b.length / 4;
  const out = new Float32Array(na * nb);
  const area = (t: Float32Array, i: number) => f(f(t[4 * i + 2]! - t[4 * i]!) * f(t[4 * i + 3]! - t[4 * i + 1]!));
  for (let i = 0; i < na; i++) {
    const areaA = area(a, i);
    for (let j = 0; j < nb; j++) {
      const w = Math.max(f(Math.min(a[4 * i + 2]!, b[4 * j + 2]!) - Math.max(a[4 * i]!, b[4 * j]!)), 0);
      const h = Math.max(f(Math.min(a[4 * i + 3]!, b[4 * j + 3]!) - Math.max(a[4 * i + 1]!, b[4 * j + 1]!)), 0);
      const inter = f(w * h);
      out[i * nb + j] = inter > 0 ? f(inter / f(f(areaA + area(b, j)) - inter)) : 0;
    }
  }
  return out;
}
