// Pairwise IoU of row-major run lists (competition masks). Boxes rule out most pairs first, and
// the remaining pairs are computed by merging runs: never a per-pixel loop over the image.
import { runsArea, runsBounds, runsIntersection, type Runs } from '../../structures/rle';

interface Prepared {
  runs: Runs;
  area: number;
  box: { x0: number; y0: number; x1: number; y1: number } | null;
}

function prepare(list: readonly Runs[], width: number): Prepared[] {
  return list.map((runs) => ({ runs, area: runsArea(runs), box: runsBounds(runs, width) }));
}

/** IoU matrix [a][b] (Float64Array rows). Empty masks have IoU 0 with everything. */
export function runsIouMatrix(a: readonly Runs[], b: readonly Runs[], width: number): Float64Array[] {
  const pa = prepare(a, width);
  const pb = prepare(b, width);
  return pa.map((A) => {
    const row = new Float64Array(pb.length);
    if (!A.box) return row;
    for (let j = 0; j < pb.length; j++) {
      const B = pb[j]!;
      if (!B.box || B.box.x0 > A.box.x1 || A.box.x0 > B.box.x1 || B.box.y0 > A.box.y1 || A.box.y0 > B.box.y1) continue;
      const inter = runsIntersection(A.runs, B.runs);
      if (inter > 0) row[j] = inter / (A.area + B.area - inter);
    }
    return row;
  });
}
