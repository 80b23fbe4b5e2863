// Cell shapes of the three Sartorius types, drawn to follow the real data's per-type statistics:
// shsy5y small elongated (area ~250 px, minor/major ~0.55), astro large and irregular with thin
// processes (area ~900 px with a long tail, ratio ~0.37, solidity ~0.74), cort small and round
// (area ~260 px, ratio ~0.73, solidity ~0.94). A shape is a wobbly rotated ellipse plus processes,
// rasterised into a crop.
import type { Rng } from '../../../runtime/rng';
import type { CellType } from '../cell-types';
import type { MaskCrop } from '../../../structures/mask-crop';

export interface CellShape {
  cx: number;
  cy: number;
  /** Semi-axes and rotation of the base ellipse. */
  a: number;
  b: number;
  angle: number;
  /** Boundary wobble: radius factor 1 + sum amp_k sin(k*theta + phase_k). */
  wobble: { k: number; amp: number; phase: number }[];
  /** Thin processes: polylines from the body outward, with a width in pixels. */
  processes: { points: [number, number][]; width: number }[];
}

interface TypeStats {
  /** log-normal area: median and sigma of log(area) */
  areaMedian: number;
  areaSigma: number;
  areaMin: number;
  areaMax: number;
  ratioMean: number;
  ratioStd: number;
  wobbleAmp: number;
  processes: [number, number];
  processLength: [number, number];
  /** Mean cells on a full 704x520 image (as in the real data). */
  cellsPerImage: number;
  cellsStd: number;
}

export const TYPE_STATS: Record<CellType, TypeStats> = {
  shsy5y: {
    areaMedian: 215, areaSigma: 0.5, areaMin: 30, areaMax: 2300,
    ratioMean: 0.55, ratioStd: 0.17, wobbleAmp: 0.09, processes: [0, 1], processLength: [4, 9],
    cellsPerImage: 337, cellsStd: 60,
  },
  astro: {
    areaMedian: 600, areaSigma: 0.8, areaMin: 60, areaMax: 11000,
    ratioMean: 0.33, ratioStd: 0.15, wobbleAmp: 0.18, processes: [1, 3], processLength: [8, 24],
    cellsPerImage: 80, cellsStd: 20,
  },
  cort: {
    areaMedian: 225, areaSigma: 0.5, areaMin: 40, areaMax: 2100,
    ratioMean: 0.74, ratioStd: 0.13, wobbleAmp: 0.05, processes: [0, 0], processLength: [4, 9],
    cellsPerImage: 34, cellsStd: 10,
  },
};

export function randomShape(rng: Rng, type: CellType, cx: number, cy: number): CellShape {
  const st = TYPE_STATS[type];
  const area = Math.min(st.areaMax, Math.max(st.areaMin, st.areaMedian * Math.exp(rng.normal(0, st.areaSigma))));
  const ratio = Math.min(0.98, Math.max(0.12, rng.normal(st.ratioMean, st.ratioStd)));
  const a = Math.sqrt(area / (Math.PI * ratio));
  const b = a * ratio;
  const angle = rng.uniform(0, Math.PI);
  const wobble = [2, 3, 5].map((k) => ({ k, amp: rng.uniform(0, st.wobbleAmp), phase: rng.uniform(0, 2 * Math.PI) }));
  const processes: CellShape['processes'] = [];
  const nProc = rng.int(st.processes[0], st.processes[1] + 1);
  for (let p = 0; p < nProc; p++) {
    const dir = rng.uniform(0, 2 * Math.PI);
    const len = rng.uniform(st.processLength[0], st.processLength[1]) * (type === 'astro' ? Math.sqrt(a / 15) : 1);
    const bend = rng.normal(0, 0.35);
    const start: [number, number] = [cx + Math.cos(dir) * b * 0.5, cy + Math.sin(dir) * b * 0.5];
    const mid: [number, number] = [start[0] + Math.cos(dir) * len * 0.5, start[1] + Math.sin(dir) * len * 0.5];
    const end: [number, number] = [mid[0] + Math.cos(dir + bend) * len * 0.5, mid[1] + Math.sin(dir + bend) * len * 0.5];
    processes.push({ points: [start, mid, end], width: rng.uniform(1.6, 3.2) });
  }
  return { cx, cy, a, b, angle, wobble, processes };
}

/** Half-extent of the shape's bounding square around its centre. */
export function shapeRadius(s: CellShape): number {
  const wob = 1 + s.wobble.reduce((t, w) => t + w.amp, 0);
  let r = s.a * wob + 1;
  for (const p of s.processes) for (const [x, y] of p.points) r = Math.max(r, Math.hypot(x - s.cx, y - s.cy) + p.width);
  return r;
}

function insideBody(s: CellShape, x: number, y: number): boolean {
  const dx = x - s.cx;
  const dy = y - s.cy;
  const c = Math.cos(s.angle);
  const sn = Math.sin(s.angle);
  const u = (dx * c + dy * sn) / s.a;
  const v = (-dx * sn + dy * c) / s.b;
  const rho = Math.hypot(u, v);
  const theta = Math.atan2(v, u);
  let lim = 1;
  for (const w of s.wobble) lim += w.amp * Math.sin(w.k * theta + w.phase);
  return rho <= lim;
}

function distToSegment(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const vx = bx - ax;
  const vy = by - ay;
  const l2 = vx * vx + vy * vy;
  const t = l2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * vx + (py - ay) * vy) / l2));
  return Math.hypot(px - (ax + t * vx), py - (ay + t * vy));
}

/** Rasterises a shape (pixel centres at integer coordinates) into a crop clipped to the image. */
export function rasterizeShape(s: CellShape, imageWidth: number, imageHeight: number): MaskCrop {
  // The body and each process segment are filled within their own boxes only: processes make the
  // overall box large and mostly empty.
  const bodyR = s.a * (1 + s.wobble.reduce((t, w) => t + w.amp, 0)) + 1;
  let bx0 = s.cx - bodyR;
  let by0 = s.cy - bodyR;
  let bx1 = s.cx + bodyR;
  let by1 = s.cy + bodyR;
  for (const p of s.processes) {
    for (const [x, y] of p.points) {
      bx0 = Math.min(bx0, x - p.width);
      by0 = Math.min(by0, y - p.width);
      bx1 = Math.max(bx1, x + p.width);
      by1 = Math.max(by1, y + p.width);
    }
  }
  const x0 = Math.max(0, Math.floor(bx0));
  const y0 = Math.max(0, Math.floor(by0));
  const x1 = Math.min(imageWidth - 1, Math.ceil(bx1));
  const y1 = Math.min(imageHeight - 1, Math.ceil(by1));
  const width = Math.max(0, x1 - x0 + 1);
  const height = Math.max(0, y1 - y0 + 1);
  const data = new Uint8Array(width * height);
  const fillBox = (fx0: number, fy0: number, fx1: number, fy1: number, inside: (px: number, py: number) => boolean) => {
    const ax = Math.max(x0, Math.floor(fx0));
    const ay = Math.max(y0, Math.floor(fy0));
    const ex = Math.min(x1, Math.ceil(fx1));
    const ey = Math.min(y1, Math.ceil(fy1));
    for (let py = ay; py <= ey; py++) {
      for (let px = ax; px <= ex; px++) {
        const i = (py - y0) * width + (px - x0);
        if (!data[i] && inside(px, py)) data[i] = 1;
      }
    }
  };
  fillBox(s.cx - bodyR, s.cy - bodyR, s.cx + bodyR, s.cy + bodyR, (px, py) => insideBody(s, px, py));
  for (const pr of s.processes) {
    const r = pr.width / 2;
    for (let k = 0; k + 1 < pr.points.length; k++) {
      const [ax, ay] = pr.points[k]!;
      const [bx, by] = pr.points[k + 1]!;
      fillBox(Math.min(ax, bx) - r, Math.min(ay, by) - r, Math.max(ax, bx) + r, Math.max(ay, by) + r, (px, py) => distToSegment(px, py, ax, ay, bx, by) <= r);
    }
  }
  return { imageWidth, imageHeight, x0, y0, width, height, data };
}
