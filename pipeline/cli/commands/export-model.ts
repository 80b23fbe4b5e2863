// `cellseg export-model`: a demo-model weights file with every floating tensor stored as F16
// (half the size; integer buffers kept). It loads wherever weights load (predict --weights,
// MODEL.WEIGHTS), widened back to f32.
//   cellseg export-model --weights output/sartorius/model_final.safetensors --out models/zoo/NAME.safetensors
import type { Command } from 'commander';
import { exportWeightsFile } from '../../zoo/export';
import { checkOutputs } from '../../io/output-path';

const mb = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;

export function register(program: Command): void {
  program
    .command('export-model')
    .description('write model weights as F16 safetensors for the model zoo (floating tensors F16, integer buffers kept)')
    .requiredOption('--weights <file>', 'weights to export (.safetensors from training, or .pth / .pkl)')
    .requiredOption('--out <file>', 'F16 safetensors to write, e.g. models/zoo/NAME.safetensors')
    .action(async (o: { weights: string; out: string }) => {
      checkOutputs({ '--out': o.out });
      const s = await exportWeightsFile(o.weights, o.out);
      console.log(
        `${o.weights} (${s.sourceFormat}, ${mb(s.inputBytes)}) -> ${o.out} (${mb(s.bytes)}): ${s.tensors} tensors, ${s.halfTensors} as F16, ${s.keptTensors} kept (integer); ` +
          `${s.values.toLocaleString('en-US')} values, max relative rounding ${s.maxRelError.toExponential(2)}${s.flushedToZero ? `, ${s.flushedToZero} tiny values flushed to 0` : ''}`,
      );
    });
}
