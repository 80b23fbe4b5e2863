// Checks a submission the way the competition scorer does: header, known ids, every expected id
// present, RLE pairs sorted/positive/inside the image (while reading), and no two masks of one
// image overlapping.
import { InputError } from '../../runtime/errors';
import { readSubmission, type Submission } from './submission';
import { runsIntersection } from '../../structures/rle';

export interface ValidationReport {
  images: number;
  instances: number;
  emptyImages: number;
}

export function findOverlap(sub: Submission): { id: string; lineA: number; lineB: number; pixels: number } | undefined {
  for (const [id, list] of sub) {
    // runs of different masks, merged in start order: an overlap shows as a start before the previous end
    const all: { s: number; e: number; line: number }[] = [];
    for (const inst of list) {
      for (let k = 0; k < inst.runs.starts.length; k++) {
        all.push({ s: inst.runs.starts[k]!, e: inst.runs.starts[k]! + inst.runs.lengths[k]!, line: inst.line });
      }
    }
    all.sort((a, b) => a.s - b.s);
    let prev: { s: number; e: number; line: number } | undefined;
    for (const r of all) {
      if (prev && r.s < prev.e) {
        const a = list.find((x) => x.line === prev!.line)!;
        const b = list.find((x) => x.line === r.line)!;
        return { id, lineA: prev.line, lineB: r.line, pixels: runsIntersection(a.runs, b.runs) };
      }
      if (!prev || r.e > prev.e) prev = r;
    }
  }
  return undefined;
}

export async function validateSubmission(
  file: string,
  expected: Map<string, { width: number; height: number }>,
): Promise<ValidationReport> {
  const sub = await readSubmission(file, (id) => expected.get(id));
  for (const id of expected.keys()) {
    if (!sub.has(id)) throw new InputError(file, `image ${id}`, 'has no row (write one with an empty "predicted" for an image without instances)');
  }
  const ov = findOverlap(sub);
  if (ov) {
    throw new InputError(file, `lines ${ov.lineA} and ${ov.lineB} (image ${ov.id})`, `masks overlap in ${ov.pixels} pixel(s); submissions must not overlap`);
  }
  let instances = 0;
  let emptyImages = 0;
  for (const list of sub.values()) {
    instances += list.length;
    if (list.length === 0) emptyImages++;
  }
  return { images: sub.size, instances, emptyImages };
}
