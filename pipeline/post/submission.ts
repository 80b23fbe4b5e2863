// submission.csv: header "id,predicted", one row per predicted instance (row-major 1-based RLE), and
// one row with an empty `predicted` for an image without instances (as sample_submission.csv and
// mistag's notebook do). Reading validates ids, RLE syntax and bounds.
import { InputError } from '../../runtime/errors';
import { quoteInput } from '../io/limits';
import { withAtomicText } from '../io/atomic';
import { csvField, readCsvRecords } from '../io/csv';
import { RleFormatError, parseRle, runsToRle, type Runs } from '../../structures/rle';

export interface SubmissionInstance {
  runs: Runs;
  line: number;
}

/** Instances per image id, in file order; an image with only an empty row maps to []. */
export type Submission = Map<string, SubmissionInstance[]>;

/**
 * Reads a submission. `sizeOf(id)` gives the image size for bounds checks, or undefined for an
 * unknown id (an error).
 */
export async function readSubmission(
  file: string,
  sizeOf: (id: string) => { width: number; height: number } | undefined,
): Promise<Submission> {
  const out: Submission = new Map();
  for await (const { fields: f, line: lineNo } of readCsvRecords(file, ['id', 'predicted'])) {
    const [id, predicted] = f as [string, string];
    const size = sizeOf(id);
    if (!size) throw new InputError(file, `line ${lineNo}`, `unknown image id "${quoteInput(id)}"`);
    let runs: Runs;
    try {
      runs = parseRle(predicted, size.width * size.height);
    } catch (e) {
      if (e instanceof RleFormatError) throw new InputError(file, `line ${lineNo} (image ${id})`, `predicted: ${e.message}`);
      throw e;
    }
    let list = out.get(id);
    if (!list) out.set(id, (list = []));
    if (runs.starts.length > 0) list.push({ runs, line: lineNo });
  }
  return out;
}

/** Writes a submission atomically: images in the given order; an image without instances gets an empty row. */
export async function writeSubmission(file: string, ids: readonly string[], instances: Map<string, Runs[]>): Promise<void> {
  await withAtomicText(file, async (w) => {
    await w.write('id,predicted\n');
    for (const id of ids) {
      const list = instances.get(id) ?? [];
      if (list.length === 0) await w.write(`${csvField(id)},\n`);
      for (const r of list) await w.write(`${csvField(id)},${runsToRle(r)}\n`);
    }
  });
}

/** sample_submission.csv: every test id with an empty prediction. */
export async function writeSampleSubmission(file: string, ids: readonly string[]): Promise<void> {
  await writeSubmission(file, ids, new Map());
}
