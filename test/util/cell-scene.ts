// A tiny deterministic scene for the overfit test: a few bright-rimmed, darker-bodied "cells"
// (ellipses) on a mid-gray background with mild noise, and their polygons as ground truth.
import { Rng } from '../../runtime/rng';
import type { GtInstances, ImageInput } from '../../models/centermask';

export interface Cell {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
  angle: number;
  cls: number;
}

export function ellipsePolygon(c: Cell, points = 24): number[] {
  const out: number[] = [];
  const ca = Math.cos(c.angle);
  const sa = Math.sin(c.angle);
  for (let k = 0; k < points; k++) {
    const t = (2 * Math.PI * k) / points;
    const x = c.rx * Math.cos(t);
    const y = c.ry * Math.sin(t);
    out.push(c.cx + x * ca - y * sa, c.cy + x * sa + y * ca);
  }
  return out;
}

export function insideEllipse(c: Cell, x: number, y: number): number {
  const dx = x - c.cx;
  const dy = y - c.cy;
  const u = (dx * Math.cos(c.angle) + dy * Math.sin(c.angle)) / c.rx;
  const v = (-dx * Math.sin(c.angle) + dy * Math.cos(c.angle)) / c.ry;
  return u * u + v * v;
}

export function makeScene(size: number, cells: Cell[], seed = 1): { input: ImageInput; gt: GtInstances; masks: Uint8Array[] } {
  const rng = new Rng(seed);
  const gray = new Float32Array(size * size);
  const masks = cells.map(() => new Uint8Array(size * size));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let v = 128 + rng.normal(0, 3);
      cells.forEach((c, i) => {
        const r = insideEllipse(c, x + 0.5, y + 0.5);
        if (r <= 1) {
          masks[i]![y * size + x] = 1;
          v = r > 0.6 ? 200 : 90 + 20 * c.cls;
        }
      });
      gray[y * size + x] = v;
    }
  }
  const image = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) image.set(gray, c * size * size);
  const polygons = cells.map((c) => [ellipsePolygon(c)]);
  const boxes = new Float32Array(cells.length * 4);
  polygons.forEach(([p], i) => {
    const xs = p!.filter((_, j) => j % 2 === 0);
    const ys = p!.filter((_, j) => j % 2 === 1);
    boxes.set([Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)], 4 * i);
  });
  return {
    input: { image, height: size, width: size, origHeight: size, origWidth: size },
    gt: { boxes, classes: Int32Array.from(cells.map((c) => c.cls)), polygons },
    masks,
  };
}

export function maskIou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! & b[i]!;
    union += a[i]! | b[i]!;
  }
  return union ? inter / union : 0;
}
