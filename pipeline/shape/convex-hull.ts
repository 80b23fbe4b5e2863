// Convex hull (Andrew's monotone chain) and the pixel count of a binary crop's convex image, as
// scikit-image's convex_hull_image builds it: the hull of the pixel corners (centre +-0.5), then
// every pixel whose centre lies inside or on the hull.

export type Point = [number, number];

function cross(o: Point, a: Point, b: Point): number {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

/** Hull vertices in counter-clockwise order (y up) without repeating the first point. */
export function convexHull(points: Point[]): Point[] {
  const pts = points.slice().sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  if (pts.length <= 2) return pts;
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  upper.pop();
  lower.pop();
  return lower.concat(upper);
}

/** Pixels of a width x height crop whose centres lie in the convex hull of the foreground's pixel corners. */
export function convexArea(data: Uint8Array, width: number, height: number): number {
  const corners: Point[] = [];
  for (let y = 0; y < height; y++) {
    // only the first and last foreground pixel of each row can contribute hull corners
    let first = -1;
    let last = -1;
    for (let x = 0; x < width; x++) {
      if (data[y * width + x]) {
        if (first < 0) first = x;
        last = x;
      }
    }
    if (first < 0) continue;
    for (const x of first === last ? [first] : [first, last]) {
      corners.push([x - 0.5, y - 0.5], [x + 0.5, y - 0.5], [x - 0.5, y + 0.5], [x + 0.5, y + 0.5]);
    }
  }
  const hull = convexHull(corners);
  if (hull.length < 3) return 0;
  let count = 0;
  const eps = 1e-9;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let inside = true;
      for (let i = 0; i < hull.length; i++) {
        if (cross(hull[i]!, hull[(i + 1) % hull.length]!, [x, y]) < -eps) {
          inside = false;
          break;
        }
      }
      if (inside) count++;
    }
  }
  return count;
}
