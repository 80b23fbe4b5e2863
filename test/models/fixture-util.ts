// Locating and reading the CenterMask2 oracle fixtures (../shared/fixtures/centermask2 next to the
// repository). Tests fail with a clear message when the folder is missing.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '../../engine/checkpoint/host-tensor';
import { readSafetensors } from '../../engine/checkpoint/safetensors';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function fixtureRoot(): string {
  const dir = process.env.CENTERMASK2_FIXTURES ?? resolve(repoRoot, '..', 'shared', 'fixtures', 'centermask2');
  if (!existsSync(resolve(dir, 'input.safetensors'))) {
    throw new Error(`CenterMask2 fixtures not found at ${dir} (expected input.safetensors there); set CENTERMASK2_FIXTURES to their folder`);
  }
  return dir;
}

export async function readTensors(file: string): Promise<Map<string, HostTensor>> {
  return (await readSafetensors(file)).tensors;
}

export function toNumbers(t: HostTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** Max |a - b| relative to max |b| (the fixture README's suggested measure). */
export function relToMaxAbs(actual: ArrayLike<number>, expected: ArrayLike<number>): { maxAbs: number; rel: number } {
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return { maxAbs, rel: maxAbs / Math.max(scale, 1e-30) };
}
