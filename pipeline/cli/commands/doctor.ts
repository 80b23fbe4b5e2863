import type { Command } from 'commander';
import { runDoctor } from '../../../runtime/doctor';
import { UserError } from '../../../runtime/errors';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('print the WebGPU adapter, enabled features and key limits, and run a checked kernel')
    .action(async () => {
      const report = await runDoctor();
      for (const l of report.lines) console.log(l);
      if (!report.kernelOk) throw new UserError('the check kernel produced wrong results on this adapter');
    });
}
