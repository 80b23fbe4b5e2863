// `cellseg convert-weights IN OUT.safetensors`: a .pth / .pkl / .safetensors checkpoint as one
// safetensors file (zoo/convert-weights.ts).
import type { Command } from 'commander';
import { convertWeights } from '../../zoo/convert-weights';
import { checkOutputs } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('convert-weights')
    .description('convert a .pth / .pkl / .safetensors checkpoint to safetensors (names and dtypes kept, "model" wrapper removed)')
    .argument('<in>', 'checkpoint to read (.pth zip or legacy, Detectron2 .pkl, .safetensors)')
    .argument('<out>', 'safetensors file to write (written to a temporary file, then renamed)')
    .action(async (input: string, output: string) => {
      checkOutputs({ OUT: output });
      const s = await convertWeights(input, output);
      console.log(`${input} (${s.format}): ${s.tensors} tensors, ${s.values.toLocaleString('en-US')} values -> ${output}`);
      if (s.ignored.length > 0) console.log(`left out (not tensors): ${s.ignored.join(', ')}`);
    });
}
