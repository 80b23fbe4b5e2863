import type { Command } from 'commander';
import { jsonFile, writeFilesAtomic } from '../../io/atomic';
import { buildShapeReport, collectShapeSamples } from '../../shape/analyze';
import { shapeFigureSvg } from '../../shape/figure';
import { CELL_TYPES } from '../../data/cell-types';
import { checkOutputs } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('analyze')
    .description('per-cell-type shape statistics of train.csv (JSON for post-processing) and a histogram figure (SVG)')
    .requiredOption('--train-csv <file>', 'train.csv (competition format)')
    .option('--out <file>', 'statistics JSON', 'output/shape_data.json')
    .option('--figure <file>', 'histogram figure (SVG)', 'output/shape_hist.svg')
    .action(async (o: { trainCsv: string; out: string; figure: string }) => {
      checkOutputs({ '--out': o.out, '--figure': o.figure });
      let images = 0;
      const samples = await collectShapeSamples(o.trainCsv, () => images++);
      const report = buildShapeReport(o.trainCsv, samples);
      const svg = shapeFigureSvg(samples); // both outputs made before either is written
      writeFilesAtomic([jsonFile(o.out, report), { path: o.figure, data: svg }]);
      for (const t of CELL_TYPES) {
        const r = report.cell_types[t];
        if (!r) continue;
        const f = r.features;
        console.log(
          `${t.padEnd(7)} images ${r.images} instances ${r.instances}: area mean ${f.area.mean.toFixed(1)}, ` +
            `major axis p1 ${f.major_axis_length.p1.toFixed(3)}, axis ratio mean ${f.axis_ratio.mean.toFixed(3)}, ` +
            `solidity mean ${f.solidity.mean.toFixed(3)}, extent mean ${f.extent.mean.toFixed(3)}`,
        );
      }
      console.log(`wrote ${o.out} and ${o.figure} (${images} images)`);
    });
}
