// Converting a PyTorch/Detectron2 checkpoint (.pth zip or legacy, .pkl of numpy arrays, or
// safetensors) into one safetensors file, so that nothing downstream (and nothing in a browser)
// ever parses a pickle. Tensors keep their names and dtypes; a top-level 'model' wrapper is
// removed; non-tensor entries are listed and left out.
import * as path from 'node:path';
import { UserError } from '../../runtime/errors';
import { numel } from '../../engine/checkpoint/host-tensor';
import { loadCheckpoint } from '../../engine/checkpoint/load';
import { writeSafetensors } from '../../engine/checkpoint/safetensors';

export interface ConvertSummary {
  format: string;
  tensors: number;
  values: number;
  ignored: string[];
}

export async function convertWeights(input: string, output: string): Promise<ConvertSummary> {
  if (path.resolve(input) === path.resolve(output)) throw new UserError(`convert-weights: output ${output} would overwrite the input`);
  if (!output.endsWith('.safetensors')) throw new UserError(`convert-weights: output ${output} must end in .safetensors`);
  const ckpt = await loadCheckpoint(input);
  if (ckpt.tensors.size === 0) throw new UserError(`convert-weights: ${input} holds no tensors`);
  await writeSafetensors(output, ckpt.tensors, {
    ...ckpt.metadata,
    converted_from: path.basename(input),
    source_format: ckpt.format,
  });
  let values = 0;
  for (const t of ckpt.tensors.values()) values += numel(t.shape);
  return { format: ckpt.format, tensors: ckpt.tensors.size, values, ignored: ckpt.ignored };
}
