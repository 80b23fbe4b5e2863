import type { Command } from 'commander';
import { init } from '../../../runtime/runtime';
import { loadConfig } from '../../../models/config/config';
import { CenterMask } from '../../../models/centermask';
import { centerMaskSummary, formatSummary } from '../../../models/summary';

export function register(program: Command): void {
  program
    .command('model-summary')
    .description('per-module parameter counts of the CenterMask model a config builds')
    .requiredOption('--config-file <file>', 'YAML config (with _BASE_ inheritance)')
    .option('--json', 'print JSON rows instead of a table')
    .argument('[overrides...]', 'KEY VALUE config overrides')
    .action(async (overrides: string[], opts: { configFile: string; json?: boolean }) => {
      const cfg = loadConfig(opts.configFile, overrides);
      await init();
      const model = new CenterMask(cfg);
      const rows = centerMaskSummary(model);
      console.log(opts.json ? JSON.stringify(rows, null, 2) : `${opts.configFile} (${cfg.MODEL.VOVNET.CONV_BODY}, ${cfg.MODEL.FCOS.NUM_CLASSES} classes)\n${formatSummary(rows)}`);
    });
}
