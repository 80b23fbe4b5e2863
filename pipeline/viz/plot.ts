// Training curves from a Detectron2-style metrics.json (pipeline/engine/metrics.ts: one JSON object
// per line; training lines carry iteration, total_loss, loss_*, lr, time; evaluation lines carry
// iteration and "segm/AP", "bbox/AP50", "competition/score", ...) drawn into an RGBA image:
//   left panel   total_loss and every loss_* against iteration (log-scale y by default),
//   right panel  the accuracy metrics against iteration (COCO AP in percent as Detectron2 writes
//                it; metrics on a 0-1 scale, competition/*, are drawn x100 and labelled so),
// with axes, tick labels, legends and a title in the 5x7 bitmap font. Reference series
// ({iteration, value} points, e.g. the reference run's published curve) are drawn dashed with
// hollow markers, in the colour of the series of the same name when there is one.
// A resumed run appends to metrics.json, so an iteration may appear twice: the last line wins.
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { InputError, UserError } from '../../runtime/errors';
import { readJsonFile } from '../io/json';
import { MAX_JSON_BYTES, checkInputFile } from '../io/limits';
import { textHeight, textWidth } from './font';
import { writePngRgba } from './png';
import { Canvas, type Rgb, type RgbaImage } from './raster';

export interface SeriesPoint {
  iteration: number;
  value: number;
}

export interface ReferenceSeries {
  /** Metric or loss name ("segm/AP", "total_loss") or any label. */
  label: string;
  points: readonly SeriesPoint[];
  /** Which panel; default: 'loss' when the label contains "loss", else 'metrics'. */
  panel?: 'loss' | 'metrics';
}

export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
  /** Loss keys to draw; default total_loss and every loss_* present. */
  lossKeys?: readonly string[];
  /** Metric keys to draw; default those of DEFAULT_METRIC_KEYS present, or every "x/y" key if none is. */
  metricKeys?: readonly string[];
  /** Log-scale loss axis (default true; falls back to linear when a loss is <= 0). */
  logLoss?: boolean;
  reference?: readonly ReferenceSeries[];
  /** Text scale factor of the 5x7 font (default 2). */
  textScale?: number;
  /** Name used in error messages. */
  file?: string;
}

export interface ParsedMetrics {
  /** key -> points sorted by iteration (one per iteration, the last line's value). */
  losses: Map<string, SeriesPoint[]>;
  metrics: Map<string, SeriesPoint[]>;
}

export const DEFAULT_METRIC_KEYS = ['segm/AP', 'segm/AP50', 'bbox/AP', 'bbox/AP50', 'competition/score'] as const;

const PALETTE: readonly Rgb[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];
const BLACK: Rgb = [0, 0, 0];
const AXIS: Rgb = [60, 60, 60];
const GRID: Rgb = [225, 225, 225];
const GRID_MINOR: Rgb = [242, 242, 242];
const TEXT: Rgb = [20, 20, 20];

function isLossKey(k: string): boolean {
  return k === 'total_loss' || k.startsWith('loss_');
}

/** Metrics on a 0..1 scale, drawn x100 beside the percentages. */
function metricFactor(key: string): number {
  return key.startsWith('competition/') ? 100 : 1;
}

/** Parses metrics.json text (JSON lines). Bad lines are an InputError naming the line. */
export function parseMetricsJson(text: string, file = 'metrics.json'): ParsedMetrics {
  const losses = new Map<string, Map<number, number>>();
  const metrics = new Map<string, Map<number, number>>();
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const where = `line ${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      // A crash while appending can leave a cut last line; anything else is damage.
      if (i >= lines.length - 2 && !raw.endsWith('}')) return;
      throw new InputError(file, where, `not a JSON object (${(err as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new InputError(file, where, 'must be a JSON object');
    const rec = obj as Record<string, unknown>;
    const it = rec.iteration;
    if (typeof it !== 'number' || !Number.isInteger(it) || it < 0) throw new InputError(file, where, `"iteration" must be a non-negative integer, got ${JSON.stringify(it)}`);
    for (const [k, v] of Object.entries(rec)) {
      if (k === 'iteration') continue;
      const target = isLossKey(k) ? losses : k.includes('/') ? metrics : null;
      if (!target) continue; // lr, time, data_time, eta_seconds, ...
      if (v !== null && typeof v !== 'number') throw new InputError(file, `${where}: "${k}"`, `must be a number or null, got ${JSON.stringify(v)}`);
      const series = target.get(k) ?? target.set(k, new Map()).get(k)!;
      series.set(it, v === null ? NaN : v); // NaN (written as null) breaks the line
    }
  });
  const sorted = (m: Map<string, Map<number, number>>) =>
    new Map([...m].map(([k, s]) => [k, [...s].sort((a, b) => a[0] - b[0]).map(([iteration, value]) => ({ iteration, value }))]));
  return { losses: sorted(losses), metrics: sorted(metrics) };
}

// ---------------------------------------------------------------------------------------------
// Axes

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  /** Labelled ticks. */
  ticks: number[];
  /** Unlabelled grid lines. */
  minor: number[];
}

function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function linearAxis(lo: number, hi: number, target = 5, zeroBased = false): Axis {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (zeroBased) lo = Math.min(0, lo);
  if (hi - lo < 1e-12) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.1 : 1;
    [lo, hi] = zeroBased && lo === 0 ? [0, hi + pad] : [lo - pad, hi + pad];
  }
  const step = niceStep(hi - lo, target);
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let k = 0; a + k * step <= b + step * 1e-9; k++) ticks.push(Number((a + k * step).toPrecision(12)));
  return { lo: a, hi: b, log: false, ticks, minor: [] };
}

function logAxis(lo: number, hi: number): Axis {
  let e0 = Math.floor(Math.log10(lo) + 1e-9);
  let e1 = Math.ceil(Math.log10(hi) - 1e-9);
  if (e1 <= e0) e1 = e0 + 1;
  const decades = e1 - e0;
  if (decades > 8) e0 = e1 - 8; // losses below 1e-8 of the largest are off the chart
  const ticks: number[] = [];
  const minor: number[] = [];
  for (let e = e0; e <= e1; e++) {
    const p = 10 ** e;
    ticks.push(Number(p.toPrecision(12)));
    if (e === e1) break;
    for (let m = 2; m <= 9; m++) {
      const v = Number((m * p).toPrecision(12));
      if (decades <= 2 && (m === 2 || m === 5)) ticks.push(v);
      else minor.push(v);
    }
  }
  return { lo: 10 ** e0, hi: 10 ** e1, log: true, ticks, minor };
}

function project(a: Axis, v: number, from: number, to: number): number {
  const t = a.log ? (Math.log10(v) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo)) : (v - a.lo) / (a.hi - a.lo);
  return from + t * (to - from);
}

/** Tick label: plain decimals, "1e-5" style outside 1e-3..1e5, "20k" for round thousands of iterations. */
export function formatTick(v: number, iterations = false): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (iterations && a >= 10000 && v % 1000 === 0) return `${v / 1000}k`;
  if (a >= 1e5 || a < 1e-3) {
    const e = Math.floor(Math.log10(a) + 1e-9);
    const m = Number((v / 10 ** e).toPrecision(3));
    return `${m}e${e}`;
  }
  return String(Number(v.toPrecision(6)));
}

// ---------------------------------------------------------------------------------------------
// Drawing

interface DrawSeries {
  label: string;
  color: Rgb;
  points: SeriesPoint[];
  dashed: boolean;
  width: number;
  markerSize: number;
}

interface PanelSpec {
  title: string;
  yLabel: string;
  series: DrawSeries[];
  logY: boolean;
  zeroBasedY: boolean;
  empty: string;
}

function drawPanel(cv: Canvas, box: { x: number; y: number; w: number; h: number }, spec: PanelSpec, xAxis: Axis, s: number): void {
  const th = textHeight(s);
  const left = box.x + 12 * s + th + 6 * s * 6; // y label + room for tick labels
  const right = box.x + box.w - 8 * s;
  const top = box.y + th + 8 * s;
  const bottom = box.y + box.h - (2 * th + 14 * s);
  cv.text(box.x + box.w / 2 - textWidth(spec.title, s) / 2, box.y, spec.title, TEXT, s);

  const pts = spec.series.flatMap((d) => d.points.filter((p) => Number.isFinite(p.value) && (!spec.logY || p.value > 0)));
  let yAxis: Axis;
  if (pts.length === 0) yAxis = linearAxis(0, 1);
  else {
    const vals = pts.map((p) => p.value);
    const lo = Math.min(...vals);
    const hi = Math.max(...vals);
    yAxis = spec.logY ? logAxis(lo, hi) : linearAxis(lo, hi, 5, spec.zeroBasedY);
  }
  const X = (it: number) => project(xAxis, it, left, right);
  const Y = (v: number) => project(yAxis, v, bottom, top);

  // grid
  for (const v of yAxis.minor) cv.fillRect(left, Math.round(Y(v)), right - left, 1, GRID_MINOR);
  for (const v of yAxis.ticks) cv.fillRect(left, Math.round(Y(v)), right - left, 1, GRID);
  for (const v of xAxis.ticks) cv.fillRect(Math.round(X(v)), top, 1, bottom - top, GRID);
  // axes, ticks and labels
  cv.strokeRect(left, top, right - left + 1, bottom - top + 1, AXIS);
  for (const v of yAxis.ticks) {
    const y = Math.round(Y(v));
    cv.fillRect(left - 4 * s, y, 4 * s, 1, AXIS);
    const label = formatTick(v);
    cv.text(left - 6 * s - textWidth(label, s), y - th / 2, label, TEXT, s);
  }
  for (const v of xAxis.ticks) {
    const x = Math.round(X(v));
    cv.fillRect(x, bottom + 1, 1, 4 * s, AXIS);
    const label = formatTick(v, true);
    cv.text(x - textWidth(label, s) / 2, bottom + 7 * s, label, TEXT, s);
  }
  cv.text((left + right) / 2 - textWidth('iteration', s) / 2, bottom + 7 * s + th + 6 * s, 'iteration', TEXT, s);
  cv.textVertical(box.x, (top + bottom) / 2 - textWidth(spec.yLabel, s) / 2, spec.yLabel, TEXT, s);

  if (spec.series.length === 0) {
    cv.text((left + right) / 2 - textWidth(spec.empty, s) / 2, (top + bottom) / 2 - th / 2, spec.empty, [150, 150, 150], s);
    return;
  }

  // series, clipped to the plot area
  cv.clip = { x0: left + 1, y0: top + 1, x1: right, y1: bottom };
  const screen: [number, number][] = [];
  for (const d of spec.series) {
    const xy = d.points.map((p) => [X(p.iteration), Number.isFinite(p.value) && (!spec.logY || p.value > 0) ? Y(p.value) : NaN] as [number, number]);
    cv.polyline(xy, d.color, { width: d.width, dash: d.dashed ? [7 * s, 4 * s] : undefined });
    if (d.markerSize > 0) for (const [x, y] of xy) if (Number.isFinite(y)) cv.marker(x, y, d.markerSize, d.color, d.dashed);
    for (const p of xy) if (Number.isFinite(p[1])) screen.push(p);
  }
  cv.resetClip();

  // legend in the corner the data crosses least
  const rowH = th + 5 * s;
  const swatch = 14 * s;
  const lw = Math.max(...spec.series.map((d) => textWidth(d.label, s))) + swatch + 14 * s;
  const lh = spec.series.length * rowH + 5 * s;
  const m = 6 * s;
  const corners = [
    [right - lw - m, top + m],
    [left + m, top + m],
    [right - lw - m, bottom - lh - m],
    [left + m, bottom - lh - m],
  ] as const;
  let best = corners[0];
  let bestHits = Infinity;
  for (const c of corners) {
    const hits = screen.filter(([x, y]) => x >= c[0] - m && x <= c[0] + lw + m && y >= c[1] - m && y <= c[1] + lh + m).length;
    if (hits < bestHits) [best, bestHits] = [c, hits];
  }
  const [lx, ly] = best;
  cv.fillRect(lx, ly, lw, lh, [255, 255, 255], 0.88);
  cv.strokeRect(lx, ly, lw, lh, [170, 170, 170]);
  spec.series.forEach((d, i) => {
    const cy = ly + 5 * s + i * rowH + th / 2;
    cv.line(lx + 5 * s, cy, lx + 5 * s + swatch, cy, d.color, { width: d.width, dash: d.dashed ? [5 * s, 3 * s] : undefined });
    if (d.markerSize > 0) cv.marker(lx + 5 * s + swatch / 2, cy, d.markerSize, d.color, d.dashed);
    cv.text(lx + 9 * s + swatch, ly + 5 * s + i * rowH, d.label, TEXT, s);
  });
}

/** Renders the training curves of metrics.json text into an RGBA image. */
export function plotMetrics(metricsJsonText: string, opts: PlotOptions = {}): RgbaImage {
  const s = opts.textScale ?? 2;
  const width = opts.width ?? 1400;
  const height = opts.height ?? 600;
  const parsed = parseMetricsJson(metricsJsonText, opts.file);
  const refs = opts.reference ?? [];
  for (const r of refs) {
    for (const p of r.points) {
      if (!Number.isFinite(p.iteration) || typeof p.value !== 'number') throw new UserError(`reference series "${r.label}": points must be {iteration, value} numbers`);
    }
  }

  const lossKeys = opts.lossKeys ?? [...parsed.losses.keys()].sort((a, b) => (a === 'total_loss' ? -1 : b === 'total_loss' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const presentDefaults = DEFAULT_METRIC_KEYS.filter((k) => parsed.metrics.has(k));
  const metricKeys = opts.metricKeys ?? (presentDefaults.length ? presentDefaults : [...parsed.metrics.keys()].sort());

  const colorOf = new Map<string, Rgb>();
  let next = 0;
  const pick = (key: string): Rgb => {
    if (key === 'total_loss') return BLACK;
    const c = colorOf.get(key) ?? PALETTE[next++ % PALETTE.length]!;
    colorOf.set(key, c);
    return c;
  };

  const lossSeries: DrawSeries[] = [];
  for (const k of lossKeys) {
    const pts = parsed.losses.get(k);
    if (!pts) continue;
    lossSeries.push({ label: k, color: pick(k), points: pts, dashed: false, width: k === 'total_loss' ? 2 * Math.ceil(s / 2) + 1 : Math.max(1, s), markerSize: pts.length <= 30 ? 2 * s + 1 : 0 });
  }
  next = 0;
  const metricSeries: DrawSeries[] = [];
  for (const k of metricKeys) {
    const pts = parsed.metrics.get(k);
    if (!pts) continue;
    const f = metricFactor(k);
    metricSeries.push({ label: f === 1 ? k : `${k} x${f}`, color: pick(k), points: pts.map((p) => ({ iteration: p.iteration, value: p.value * f })), dashed: false, width: Math.max(1, s), markerSize: 3 * s + 1 });
  }
  for (const r of refs) {
    const panel = r.panel ?? (/loss/.test(r.label) ? 'loss' : 'metrics');
    const f = panel === 'metrics' ? metricFactor(r.label) : 1;
    const d: DrawSeries = {
      label: `${r.label}${f === 1 ? '' : ` x${f}`} (ref)`,
      color: pick(r.label),
      points: [...r.points].sort((a, b) => a.iteration - b.iteration).map((p) => ({ iteration: p.iteration, value: p.value * f })),
      dashed: true,
      width: Math.max(1, s),
      markerSize: 3 * s + 1,
    };
    (panel === 'loss' ? lossSeries : metricSeries).push(d);
  }

  let maxIter = 0;
  for (const d of [...lossSeries, ...metricSeries]) for (const p of d.points) maxIter = Math.max(maxIter, p.iteration);
  const xAxis = linearAxis(0, Math.max(1, maxIter), 6, true);

  const logY = (opts.logLoss ?? true) && lossSeries.every((d) => d.points.every((p) => !Number.isFinite(p.value) || p.value > 0));
  const cv = new Canvas(width, height);
  const th = textHeight(s);
  const title = opts.title ?? 'training curves';
  cv.text(width / 2 - textWidth(title, s) / 2, 8 * s, title, TEXT, s);
  const top = 8 * s + th + 12 * s;
  const pad = 10 * s;
  const panelW = Math.floor((width - 3 * pad) / 2);
  const boxH = height - top - 6 * s;
  drawPanel(cv, { x: pad, y: top, w: panelW, h: boxH }, { title: logY ? 'losses (log scale)' : 'losses', yLabel: 'loss', series: lossSeries, logY, zeroBasedY: true, empty: 'no training lines', }, xAxis, s);
  drawPanel(cv, { x: 2 * pad + panelW, y: top, w: panelW, h: boxH }, { title: 'accuracy', yLabel: 'AP (%)', series: metricSeries, logY: false, zeroBasedY: true, empty: 'no evaluation lines' }, xAxis, s);
  return { width: cv.width, height: cv.height, rgba: cv.rgba };
}

/** The curves picture `cellseg train` and `cellseg plot-metrics` write beside metrics.json. */
export const METRICS_PLOT = 'metrics.png';

/** Reads metrics.json, renders it and writes the PNG atomically. */
export function writeMetricsPlot(metricsFile: string, outPng: string, opts: PlotOptions = {}): RgbaImage {
  checkInputFile(metricsFile, MAX_JSON_BYTES, 'metrics file');
  let text: string;
  try {
    text = readFileSync(metricsFile, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${metricsFile}: ${(err as Error).message}`);
  }
  const title = opts.title ?? `training curves: ${basename(dirname(metricsFile)) || '.'}/${basename(metricsFile)}`;
  const img = plotMetrics(text, { file: metricsFile, ...opts, title });
  writePngRgba(outPng, img);
  return img;
}

/**
 * Reference series from JSON: a list of {label, points: [{iteration, value}], panel?} or an object
 * mapping label -> [{iteration, value}] (or [[iteration, value]] pairs).
 */
export function parseReferenceSeries(json: unknown, file = 'reference'): ReferenceSeries[] {
  const toPoints = (v: unknown, where: string): SeriesPoint[] => {
    if (!Array.isArray(v)) throw new InputError(file, where, 'must be a list of {iteration, value} points');
    return v.map((p: unknown, i: number) => {
      const pair = Array.isArray(p) ? { iteration: p[0], value: p[1] } : (p as Record<string, unknown> | null);
      if (!pair || typeof pair.iteration !== 'number' || !Number.isFinite(pair.iteration) || typeof pair.value !== 'number') {
        throw new InputError(file, `${where}[${i}]`, `must be {"iteration": number, "value": number}, got ${JSON.stringify(p)}`);
      }
      return { iteration: pair.iteration, value: pair.value };
    });
  };
  if (Array.isArray(json)) {
    return json.map((r: unknown, i: number) => {
      const o = r as Record<string, unknown> | null;
      if (!o || typeof o.label !== 'string') throw new InputError(file, `[${i}]`, 'must be {label, points: [{iteration, value}], panel?}');
      if (o.panel !== undefined && o.panel !== 'loss' && o.panel !== 'metrics') throw new InputError(file, `[${i}].panel`, 'must be "loss" or "metrics"');
      return { label: o.label, points: toPoints(o.points, `[${i}].points`), panel: o.panel as ReferenceSeries['panel'] };
    });
  }
  if (typeof json === 'object' && json !== null) return Object.entries(json).map(([label, pts]) => ({ label, points: toPoints(pts, label) }));
  throw new InputError(file, undefined, 'reference series must be a list or an object');
}

/** The reference series of a JSON file (see parseReferenceSeries). */
export function readReferenceSeries(file: string): ReferenceSeries[] {
  return parseReferenceSeries(readJsonFile(file), file);
}
