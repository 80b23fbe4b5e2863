// `cellseg plot-metrics OUTPUT_DIR`: the training curves of a run folder, OUTPUT_DIR/metrics.json ->
// OUTPUT_DIR/metrics.png (what `cellseg train` writes at its end; `cellseg plot` takes any file
// names and a reference series).
//   cellseg plot-metrics output/sartorius_centermask_lite_V_39_scratch
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../../runtime/errors';
import { METRICS_PLOT, writeMetricsPlot } from '../../viz/plot';

export function register(program: Command): void {
  program
    .command('plot-metrics')
    .description(`draw the training curves of a run folder: OUTPUT_DIR/metrics.json -> OUTPUT_DIR/${METRICS_PLOT} (losses, AP and competition score)`)
    .argument('<output-dir>', 'the OUTPUT_DIR of a `cellseg train` run')
    .option('--out <file>', `PNG to write (default OUTPUT_DIR/${METRICS_PLOT})`)
    .action((dir: string, o: { out?: string }) => {
      const metrics = join(dir, 'metrics.json');
      if (!existsSync(metrics)) throw new UserError(`${dir} has no metrics.json (the OUTPUT_DIR of a cellseg train run writes one)`);
      const out = o.out ?? join(dir, METRICS_PLOT);
      if (!out.toLowerCase().endsWith('.png')) throw new UserError(`--out ${out} must end in .png`);
      const img = writeMetricsPlot(metrics, out);
      console.log(`wrote ${out} (${img.width}x${img.height})`);
    });
}
