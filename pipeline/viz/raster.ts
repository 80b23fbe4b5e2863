// A minimal RGBA raster for the figures in pipeline/viz: filled rectangles, thick (optionally
// dashed) lines by Bresenham stepping, square markers and bitmap text (pipeline/viz/font.ts).
// Pixels are row-major RGBA, 8 bits per channel; drawing clips to the canvas (or a clip rectangle).
import { encodePngRgba, type RgbaImage } from './png';
import { GLYPH_ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH, glyphBits, glyphDrop, textWidth } from './font';

export type Rgb = readonly [number, number, number];

// RgbaImage is declared in png.ts (which encodes it) so that png.ts need not import this file.
export type { RgbaImage } from './png';

export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface LineStyle {
  /** Pen width in pixels (a square pen). Default 1. */
  width?: number;
  /** [on, off] lengths in pixels along the line; undefined = solid. */
  dash?: readonly [number, number];
}

export class Canvas implements RgbaImage {
  readonly rgba: Uint8Array;
  /** Drawing outside this rectangle (inclusive-exclusive) is dropped. */
  clip: Rect;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new Error(`Canvas: bad size ${width}x${height}`);
    this.rgba = new Uint8Array(width * height * 4);
    this.clip = { x0: 0, y0: 0, x1: width, y1: height };
    this.fillRect(0, 0, width, height, background);
  }

  resetClip(): void {
    this.clip = { x0: 0, y0: 0, x1: this.width, y1: this.height };
  }

  /** Blends `color` over pixel (x, y) with opacity `alpha` (0..1). */
  plot(x: number, y: number, color: Rgb, alpha = 1): void {
    x = Math.round(x);
    y = Math.round(y);
    const c = this.clip;
    if (x < c.x0 || y < c.y0 || x >= c.x1 || y >= c.y1) return;
    const p = (y * this.width + x) * 4;
    const d = this.rgba;
    if (alpha >= 1) {
      d[p] = color[0];
      d[p + 1] = color[1];
      d[p + 2] = color[2];
    } else {
      d[p] = Math.round(d[p]! * (1 - alpha) + color[0] * alpha);
      d[p + 1] = Math.round(d[p + 1]! * (1 - alpha) + color[1] * alpha);
      d[p + 2] = Math.round(d[p + 2]! * (1 - alpha) + color[2] * alpha);
    }
    d[p + 3] = 255;
  }

  /** Fills [x, x+w) x [y, y+h). */
  fillRect(x: number, y: number, w: number, h: number, color: Rgb, alpha = 1): void {
    const xa = Math.max(Math.round(x), this.clip.x0);
    const ya = Math.max(Math.round(y), this.clip.y0);
    const xb = Math.min(Math.round(x + w), this.clip.x1);
    const yb = Math.min(Math.round(y + h), this.clip.y1);
    for (let yy = ya; yy < yb; yy++) for (let xx = xa; xx < xb; xx++) this.plot(xx, yy, color, alpha);
  }

  /** A 1-px rectangle outline around [x, x+w) x [y, y+h). */
  strokeRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    this.fillRect(x, y, w, 1, color);
    this.fillRect(x, y + h - 1, w, 1, color);
    this.fillRect(x, y, 1, h, color);
    this.fillRect(x + w - 1, y, 1, h, color);
  }

  private pen(x: number, y: number, w: number, color: Rgb): void {
    const o = Math.floor((w - 1) / 2);
    if (w <= 1) this.plot(x, y, color);
    else this.fillRect(x - o, y - o, w, w, color);
  }

  /**
   * A line from (x0, y0) to (x1, y1) (rounded to pixel centres). `phase` is the distance already
   * drawn along a polyline, so dashes continue across its segments; returns the new phase.
   */
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb, style: LineStyle = {}, phase = 0): number {
    const w = style.width ?? 1;
    let x = Math.round(x0);
    let y = Math.round(y0);
    const xe = Math.round(x1);
    const ye = Math.round(y1);
    const dx = Math.abs(xe - x);
    const dy = -Math.abs(ye - y);
    const sx = x < xe ? 1 : -1;
    const sy = y < ye ? 1 : -1;
    const steps = Math.max(dx, -dy);
    const stepLen = steps === 0 ? 0 : Math.hypot(xe - x, ye - y) / steps;
    let err = dx + dy;
    let s = phase;
    const dash = style.dash;
    for (;;) {
      if (!dash || s % (dash[0] + dash[1]) < dash[0]) this.pen(x, y, w, color);
      if (x === xe && y === ye) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y += sy;
      }
      s += stepLen;
    }
    return s;
  }

  /** A polyline through the points; non-finite points break it. */
  polyline(points: readonly (readonly [number, number])[], color: Rgb, style: LineStyle = {}): void {
    let phase = 0;
    let prev: readonly [number, number] | null = null;
    for (const p of points) {
      if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
        prev = null;
        continue;
      }
      if (prev) phase = this.line(prev[0], prev[1], p[0], p[1], color, style, phase);
      prev = p;
    }
  }

  /** A square marker of side `size` centred at (x, y): filled, or a 1-px outline with `hollow`. */
  marker(x: number, y: number, size: number, color: Rgb, hollow = false): void {
    const h = Math.floor(size / 2);
    const cx = Math.round(x);
    const cy = Math.round(y);
    if (hollow) this.strokeRect(cx - h, cy - h, size, size, color);
    else this.fillRect(cx - h, cy - h, size, size, color);
  }

  /** Text with its top-left corner at (x, y); `scale` multiplies the 5x7 glyphs. */
  text(x: number, y: number, s: string, color: Rgb, scale = 1): void {
    x = Math.round(x);
    y = Math.round(y);
    for (let i = 0; i < s.length; i++) {
      const bits = glyphBits(s[i]!);
      const gx = x + i * GLYPH_ADVANCE * scale;
      const gy = y + glyphDrop(s[i]!) * scale;
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let c = 0; c < GLYPH_WIDTH; c++) if (bits[r * GLYPH_WIDTH + c]) this.fillRect(gx + c * scale, gy + r * scale, scale, scale, color);
      }
    }
  }

  /** Text rotated 90 degrees counter-clockwise (reads bottom to top), its bounding box's top-left at (x, y). */
  textVertical(x: number, y: number, s: string, color: Rgb, scale = 1): void {
    x = Math.round(x);
    y = Math.round(y);
    const len = textWidth(s, scale);
    for (let i = 0; i < s.length; i++) {
      const bits = glyphBits(s[i]!);
      const gy = y + len - i * GLYPH_ADVANCE * scale; // bottom of glyph i's column
      const drop = glyphDrop(s[i]!);
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let c = 0; c < GLYPH_WIDTH; c++) {
          if (bits[r * GLYPH_WIDTH + c]) this.fillRect(x + (r + drop) * scale, gy - (c + 1) * scale, scale, scale, color);
        }
      }
    }
  }

  toPng(): Buffer {
    return encodePngRgba(this);
  }
}
