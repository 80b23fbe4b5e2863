// Training-curve plots from metrics.json: parsing (loss vs metric keys, resumed runs, bad lines),
// the rendered figure (series colours in the right panel, dashed reference series, log axis
// ticks), the 5x7 font, the PNG written atomically, and `cellseg plot` end to end.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { glyphBits, hasGlyph, textWidth } from '../../../pipeline/viz/font';
import { formatTick, parseMetricsJson, parseReferenceSeries, plotMetrics, writeMetricsPlot } from '../../../pipeline/viz/plot';
import { readPngRgba } from '../../../pipeline/viz/png';
import type { RgbaImage } from '../../../pipeline/viz/raster';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('plot');
afterAll(tmp.cleanup);
const ROOT = new URL('../../../', import.meta.url).pathname;

function cellseg(...args: string[]) {
  const r = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'pipeline/cli/main.ts'), ...args], { encoding: 'utf8', cwd: tmp.dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function metricsText(): string {
  const lines: string[] = [];
  for (let it = 19; it < 400; it += 20) {
    const d = Math.exp(-it / 150);
    lines.push(JSON.stringify({ data_time: 0.01, iteration: it, loss_fcos_cls: 0.2 + d, loss_mask: 0.1 + 0.5 * d, lr: 0.01, time: 0.4, total_loss: 0.3 + 1.5 * d }));
    if ((it + 1) % 100 === 0) lines.push(JSON.stringify({ iteration: it, 'segm/AP': (it + 1) / 10, 'segm/AP50': (it + 1) / 6, 'competition/score': (it + 1) / 1000, 'segm/APs': 1 }));
  }
  return lines.join('\n') + '\n';
}

/** Pixels of exactly this colour in columns [x0, x1). */
function countColor(img: RgbaImage, rgb: readonly number[], x0 = 0, x1 = img.width): number {
  let n = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = x0; x < x1; x++) {
      const p = (y * img.width + x) * 4;
      if (img.rgba[p] === rgb[0] && img.rgba[p + 1] === rgb[1] && img.rgba[p + 2] === rgb[2]) n++;
    }
  }
  return n;
}

describe('parseMetricsJson', () => {
  it('splits losses from metrics, ignores lr/time, keeps the last line of a repeated iteration, sorts', () => {
    const text = [
      '{"iteration": 19, "loss_a": 2, "lr": 0.1, "time": 1, "total_loss": 3}',
      '{"iteration": 39, "loss_a": 1.5, "total_loss": 2}',
      '{"iteration": 39, "segm/AP": 10, "competition/score": null}',
      '{"iteration": 19, "loss_a": 1.9, "total_loss": 2.9}', // a resumed run re-logs iteration 19
      '',
    ].join('\n');
    const m = parseMetricsJson(text);
    expect([...m.losses.keys()].sort()).toEqual(['loss_a', 'total_loss']);
    expect([...m.metrics.keys()].sort()).toEqual(['competition/score', 'segm/AP']);
    expect(m.losses.get('loss_a')).toEqual([{ iteration: 19, value: 1.9 }, { iteration: 39, value: 1.5 }]);
    expect(m.metrics.get('competition/score')![0]!.value).toBeNaN();
  });

  it('names the file and line of a damaged line; tolerates a cut last line', () => {
    expect(() => parseMetricsJson('{"iteration": 1, "total_loss": 1}\n{"iteration": 2, "total_loss": 1\n{"iteration": 3}\n', 'run/metrics.json')).toThrow(
      /run\/metrics\.json: line 2: not a JSON object/,
    );
    expect(() => parseMetricsJson('{"total_loss": 1}\n', 'm.json')).toThrow(/m\.json: line 1: "iteration" must be a non-negative integer/);
    expect(() => parseMetricsJson('{"iteration": 1, "total_loss": "x"}\n', 'm.json')).toThrow(/line 1: "total_loss": must be a number or null/);
    const cut = parseMetricsJson('{"iteration": 1, "total_loss": 1}\n{"iteration": 2, "total_lo');
    expect(cut.losses.get('total_loss')).toHaveLength(1);
  });
});

describe('plotMetrics', () => {
  const img = plotMetrics(metricsText(), { width: 1000, height: 450 });

  it('draws total_loss (black) in the left panel and each metric in its colour in the right panel', () => {
    expect(img.rgba.length).toBe(1000 * 450 * 4);
    expect(countColor(img, [0, 0, 0], 0, 500)).toBeGreaterThan(300); // total_loss line (and no title text is pure black)
    // metrics: segm/AP blue, segm/AP50 orange, competition/score green, only in the right half
    for (const c of [[31, 119, 180], [255, 127, 14], [44, 160, 44]]) {
      expect(countColor(img, c, 500, 1000), `colour ${c}`).toBeGreaterThan(50);
    }
    // segm/APs is not a default key: a fourth palette colour is not in the right panel
    expect(countColor(img, [214, 39, 40], 500, 1000)).toBe(0);
  });

  it('explicit metric keys select what is drawn', () => {
    const only = plotMetrics(metricsText(), { width: 1000, height: 450, metricKeys: ['segm/APs'] });
    expect(countColor(only, [31, 119, 180], 500, 1000)).toBeGreaterThan(50);
    expect(countColor(only, [255, 127, 14], 500, 1000)).toBe(0);
  });

  it('draws a reference series dashed, in the colour of the series of the same name', () => {
    const ref = parseReferenceSeries({ custom: [{ iteration: 0, value: 30 }, { iteration: 399, value: 30 }] });
    const withRef = plotMetrics(metricsText(), { width: 1000, height: 450, metricKeys: ['segm/AP'], reference: ref });
    // 'custom' gets the second palette colour; find the row of its horizontal line
    const orange = [255, 127, 14];
    let bestRow = -1;
    let best = 0;
    for (let y = 0; y < withRef.height; y++) {
      let n = 0;
      for (let x = 500; x < 1000; x++) {
        const p = (y * withRef.width + x) * 4;
        if (withRef.rgba[p] === orange[0] && withRef.rgba[p + 1] === orange[1] && withRef.rgba[p + 2] === orange[2]) n++;
      }
      if (n > best) [best, bestRow] = [n, y];
    }
    expect(best).toBeGreaterThan(100);
    // dashed: along the row, coloured runs alternate with gaps
    const row: boolean[] = [];
    for (let x = 520; x < 980; x++) {
      const p = (bestRow * withRef.width + x) * 4;
      row.push(withRef.rgba[p] === orange[0] && withRef.rgba[p + 1] === orange[1] && withRef.rgba[p + 2] === orange[2]);
    }
    const switches = row.filter((v, i) => i > 0 && v !== row[i - 1]).length;
    expect(switches).toBeGreaterThan(20);
    // same name as a plotted series -> same colour (no new palette colour)
    const same = plotMetrics(metricsText(), { width: 1000, height: 450, metricKeys: ['segm/AP'], reference: [{ label: 'segm/AP', points: [{ iteration: 100, value: 5 }] }] });
    expect(countColor(same, orange, 500, 1000)).toBe(0);
    expect(() => parseReferenceSeries([{ label: 'x', points: [{ iteration: 'a', value: 1 }] }], 'ref.json')).toThrow(/ref\.json: \[0\]\.points\[0\]: must be/);
  });

  it('renders without evaluation lines and without any lines', () => {
    const noEval = metricsText().split('\n').filter((l) => !l.includes('segm')).join('\n');
    expect(plotMetrics(noEval).width).toBe(1400);
    expect(plotMetrics('').height).toBe(600);
  });

  it('tick labels and font', () => {
    expect([0, 0.01, 0.25, 1, 20, 1500, 20000].map((v) => formatTick(v, true))).toEqual(['0', '0.01', '0.25', '1', '20', '1500', '20k']);
    expect(formatTick(1e-5)).toBe('1e-5');
    expect(formatTick(2.5e6)).toBe('2.5e6');
    for (const ch of '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ/_.-') {
      expect(hasGlyph(ch), ch).toBe(true);
      if (ch !== ' ') expect(glyphBits(ch).some((b) => b === 1), ch).toBe(true);
    }
    expect(glyphBits('\u00e9')).toEqual(glyphBits('?'));
    expect(textWidth('abc', 2)).toBe(34);
    // distinct glyphs for every character that matters
    const keys = new Set([...'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'].map((c) => glyphBits(c).join('')));
    expect(keys.size).toBe(62);
  });
});

describe('writeMetricsPlot and cellseg plot', () => {
  it('writes a PNG of the requested size, atomically', () => {
    const dir = join(tmp.dir, 'run');
    writeFileSync(join(tmp.dir, 'metrics.json'), metricsText());
    const out = join(dir, 'curves.png');
    writeMetricsPlot(join(tmp.dir, 'metrics.json'), out, { width: 800, height: 400 });
    const back = readPngRgba(out);
    expect([back.width, back.height]).toEqual([800, 400]);
    expect(readdirSync(dir)).toEqual(['curves.png']);
  });

  it('cellseg plot: writes the figure; a bad line exits 2 naming file and line', () => {
    const metrics = join(tmp.dir, 'metrics.json');
    writeFileSync(metrics, metricsText());
    const ref = join(tmp.dir, 'ref.json');
    writeFileSync(ref, JSON.stringify([{ label: 'segm/AP', points: [{ iteration: 399, value: 35 }] }]));
    const r = cellseg('plot', '--metrics', metrics, '--out', 'c.png', '--reference', ref);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/wrote c\.png \(1400x600\)/);
    expect(existsSync(join(tmp.dir, 'c.png'))).toBe(true);
    writeFileSync(join(tmp.dir, 'bad.json'), '{"iteration": 1, "total_loss": 1}\n[1, 2]\n');
    const b = cellseg('plot', '--metrics', join(tmp.dir, 'bad.json'), '--out', 'b.png');
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/bad\.json: line 2: must be a JSON object/);
    expect(existsSync(join(tmp.dir, 'b.png'))).toBe(false);
  });
});
