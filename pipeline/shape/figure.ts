// The shape-analysis figure: one panel per feature, per-type histograms overlaid, as an SVG (no
// plotting dependency; any browser or image viewer shows it).
import { CELL_TYPES } from '../data/cell-types';
import type { ShapeFeatureName, ShapeSamples } from './analyze';

const COLORS = { shsy5y: '#1f77b4', astro: '#d62728', cort: '#2ca02c' } as const;
const PANELS: { feature: ShapeFeatureName | 'cells_per_image'; title: string }[] = [
  { feature: 'area', title: 'area (px)' },
  { feature: 'major_axis_length', title: 'major axis (px)' },
  { feature: 'minor_axis_length', title: 'minor axis (px)' },
  { feature: 'axis_ratio', title: 'axis ratio (minor/major)' },
  { feature: 'solidity', title: 'solidity' },
  { feature: 'extent', title: 'extent' },
];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

export function shapeFigureSvg(samples: ShapeSamples, bins = 30): string {
  const pw = 360;
  const ph = 220;
  const cols = 3;
  const rows = Math.ceil(PANELS.length / cols);
  const W = cols * pw;
  const H = rows * ph + 30;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">\n`;
  svg += `<rect width="${W}" height="${H}" fill="white"/>\n`;
  CELL_TYPES.forEach((t, i) => {
    svg += `<rect x="${10 + i * 90}" y="8" width="12" height="12" fill="${COLORS[t]}" fill-opacity="0.6"/><text x="${26 + i * 90}" y="18">${t}</text>\n`;
  });
  PANELS.forEach((panel, idx) => {
    const ox = (idx % cols) * pw;
    const oy = 30 + Math.floor(idx / cols) * ph;
    const series = CELL_TYPES.map((t) => ({ t, v: samples.perType[t].values[panel.feature as ShapeFeatureName] }));
    const all = series.flatMap((s) => s.v);
    const left = ox + 40;
    const top = oy + 20;
    const w = pw - 55;
    const h = ph - 55;
    svg += `<text x="${ox + pw / 2}" y="${oy + 12}" text-anchor="middle" font-weight="bold">${esc(panel.title)}</text>\n`;
    svg += `<rect x="${left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="#888"/>\n`;
    if (all.length === 0) return;
    // clip the long tail at the 99.5 % point so the bulk stays readable
    const sorted = all.slice().sort((a, b) => a - b);
    const lo = sorted[0]!;
    const hi = Math.max(lo + 1e-9, sorted[Math.floor(0.995 * (sorted.length - 1))]!);
    const hist = series.map((s) => {
      const counts = new Array<number>(bins).fill(0);
      for (const v of s.v) counts[Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * bins)))]!++;
      const total = s.v.length || 1;
      return { t: s.t, dens: counts.map((c) => c / total) };
    });
    const maxD = Math.max(...hist.flatMap((x) => x.dens), 1e-9);
    for (const hs of hist) {
      hs.dens.forEach((d, b) => {
        if (d === 0) return;
        const bh = (d / maxD) * h;
        svg += `<rect x="${(left + (b * w) / bins).toFixed(1)}" y="${(top + h - bh).toFixed(1)}" width="${(w / bins).toFixed(1)}" height="${bh.toFixed(1)}" fill="${COLORS[hs.t]}" fill-opacity="0.45"/>\n`;
      });
    }
    svg += `<text x="${left}" y="${top + h + 14}">${+lo.toPrecision(4)}</text><text x="${left + w}" y="${top + h + 14}" text-anchor="end">${+hi.toPrecision(4)}</text>\n`;
    svg += `<text x="${left - 4}" y="${top + 8}" text-anchor="end">frac</text>\n`;
  });
  return svg + '</svg>\n';
}
