// Loading the CenterMask2 oracle fixtures' weights: tensors with ndim >= 2 are stored as int8
// with one power-of-two exponent per tensor (value = int8 * 2^scale_exp2, exact in float32), the
// exponents in the safetensors metadata `scale_exp2` (a JSON object name -> int).
import type { HostTensor } from '../../engine/checkpoint/host-tensor';
import { readSafetensors } from '../../engine/checkpoint/safetensors';
import { InputError } from '../../runtime/errors';

export async function readFixtureWeights(file: string): Promise<Map<string, HostTensor>> {
  const { tensors, metadata } = await readSafetensors(file);
  let scales: Record<string, number> = {};
  if (metadata.scale_exp2) {
    try {
      scales = JSON.parse(metadata.scale_exp2) as Record<string, number>;
    } catch (err) {
      throw new InputError(file, '__metadata__.scale_exp2', `not valid JSON: ${(err as Error).message}`);
    }
  }
  const out = new Map<string, HostTensor>();
  for (const [name, t] of tensors) {
    if (t.dtype !== 'I8') {
      out.set(name, t);
      continue;
    }
    const e = scales[name];
    if (e === undefined) throw new InputError(file, name, 'an I8 tensor without a scale_exp2 entry in the metadata');
    const s = 2 ** e;
    const data = Float32Array.from(t.data as Int8Array, (v) => v * s);
    out.set(name, { dtype: 'F32', shape: t.shape, data } as HostTensor);
  }
  return out;
}
