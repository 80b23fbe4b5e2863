// `cellseg plot`: training curves (losses, accuracy metrics) of a metrics.json as a PNG.
//   cellseg plot --metrics output/sartorius/metrics.json --out curves.png [--reference ref.json]
import type { Command } from 'commander';
import { UserError } from '../../../runtime/errors';
import { readReferenceSeries, writeMetricsPlot, type PlotOptions } from '../../viz/plot';
import { parseIntOption } from '../args';
import { checkOutputs } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('plot')
    .description('draw the training curves of a Detectron2-style metrics.json (losses, log scale | AP and competition score) as a PNG')
    .requiredOption('--metrics <file>', 'metrics.json written by cellseg train (one JSON object per line)')
    .option('--out <file>', 'PNG to write', 'curves.png')
    .option('--reference <file>', 'reference series drawn dashed: JSON [{label, points: [{iteration, value}], panel?}] or {label: [{iteration, value}]}')
    .option('--metric-keys <list>', 'comma-separated accuracy keys to draw (default segm/AP,segm/AP50,bbox/AP,bbox/AP50,competition/score as present)')
    .option('--title <text>', 'figure title (default: the run folder and file name)')
    .option('--linear', 'linear loss axis instead of log scale')
    .option('--width <px>', 'image width', parseIntOption('--width', 320), 1400)
    .option('--height <px>', 'image height', parseIntOption('--height', 200), 600)
    .action((o: { metrics: string; out: string; reference?: string; metricKeys?: string; title?: string; linear?: boolean; width: number; height: number }) => {
      if (!o.out.toLowerCase().endsWith('.png')) throw new UserError(`--out ${o.out} must end in .png`);
      checkOutputs({ '--out': o.out });
      const opts: PlotOptions = { width: o.width, height: o.height, title: o.title, logLoss: !o.linear };
      if (o.metricKeys) opts.metricKeys = o.metricKeys.split(',').map((k) => k.trim()).filter(Boolean);
      if (o.reference) opts.reference = readReferenceSeries(o.reference);
      const img = writeMetricsPlot(o.metrics, o.out, opts);
      console.log(`wrote ${o.out} (${img.width}x${img.height})`);
    });
}
