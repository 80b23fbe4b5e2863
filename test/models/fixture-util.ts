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

/**
 * The oracle input as the model sees it: (image - PIXEL_MEAN) in BGR, zero-padded on the bottom and
 * right to a multiple of `divisibility` (Detectron2's ImageList.from_tensors pads after
 * normalisation), so any fixture image size works. Returns [1, 3, H', W'] values and the shape.
 */
export function paddedModelInput(image: HostTensor, divisibility: number, mean: readonly number[] = [103.53, 116.28, 123.675]): { data: Float32Array; shape: [number, number, number, number] } {
  const [c, h, w] = image.shape as [number, number, number];
  const div = Math.max(1, divisibility);
  const hp = Math.ceil(h / div) * div;
  const wp = Math.ceil(w / div) * div;
  const src = image.data as Float32Array;
  const data = new Float32Array(c * hp * wp);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[(k * hp + y) * wp + x] = Math.fround(src[(k * h + y) * w + x]! - mean[k]!);
    }
  }
  return { data, shape: [1, c, hp, wp] };
}
