// `cellseg fuse-boxes`' files: a JSON {boxes, scores, labels, weights?, iou_thr?, skip_box_thr?,
// conf_type?, allows_overflow?} with one list per model (boxes normalised to [0, 1]), fused with
// Weighted Boxes Fusion into a JSON {boxes, scores, labels}.
import { InputError } from '../../runtime/errors';
import { writeJsonAtomic } from '../io/atomic';
import { readJsonFile } from '../io/json';
import { CONF_TYPES, WbfInputError, weightedBoxesFusion, type ConfType } from './wbf';

export interface FuseBoxesInput {
  boxes: number[][][];
  scores: number[][];
  labels: number[][];
  weights?: number[];
  iou_thr?: number;
  skip_box_thr?: number;
  conf_type?: string;
  allows_overflow?: boolean;
}

/** A fuse-boxes input JSON, checked: every problem is an InputError naming the file and the key. */
export function checkFuseBoxesInput(file: string, raw: unknown): FuseBoxesInput {
  const isNumList = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(file, undefined, 'expected an object {boxes, scores, labels, ...}');
  const o = raw as Record<string, unknown>;
  for (const k of ['boxes', 'scores', 'labels']) if (!Array.isArray(o[k])) throw new InputError(file, `key "${k}"`, 'must be a list with one entry per model');
  (o.boxes as unknown[]).forEach((m, i) => {
    if (!Array.isArray(m) || !m.every((b) => isNumList(b) && (b as number[]).length === 4)) {
      throw new InputError(file, `boxes[${i}]`, 'must be a list of [x0, y0, x1, y1] boxes (normalised to [0, 1])');
    }
  });
  for (const k of ['scores', 'labels']) {
    (o[k] as unknown[]).forEach((m, i) => {
      if (!isNumList(m)) throw new InputError(file, `${k}[${i}]`, 'must be a list of numbers');
    });
  }
  if (o.weights !== undefined && !isNumList(o.weights)) throw new InputError(file, 'key "weights"', 'must be a list of numbers');
  // ensemble_boxes warns and uses weights of 1 here; a file that says otherwise is a mistake to report.
  if (o.weights !== undefined && (o.weights as number[]).length !== (o.boxes as unknown[]).length) {
    throw new InputError(file, 'key "weights"', `has ${(o.weights as number[]).length} entries for ${(o.boxes as unknown[]).length} models (one weight per model)`);
  }
  for (const k of ['iou_thr', 'skip_box_thr']) {
    if (o[k] !== undefined && (typeof o[k] !== 'number' || !Number.isFinite(o[k]))) throw new InputError(file, `key "${k}"`, 'must be a number');
  }
  if (o.conf_type !== undefined && !CONF_TYPES.includes(o.conf_type as ConfType)) {
    throw new InputError(file, 'key "conf_type"', `is "${String(o.conf_type)}", expected one of ${CONF_TYPES.join(', ')}`);
  }
  if (o.allows_overflow !== undefined && typeof o.allows_overflow !== 'boolean') throw new InputError(file, 'key "allows_overflow"', 'must be true or false');
  return o as unknown as FuseBoxesInput;
}

/** Fuse the boxes of `inFile` and write the result to `outFile`; returns the box counts. */
export function fuseBoxesFile(inFile: string, outFile: string, warn?: (message: string) => void): { input: number; fused: number } {
  const inp = checkFuseBoxesInput(inFile, readJsonFile(inFile));
  try {
    const res = weightedBoxesFusion(inp.boxes, inp.scores, inp.labels, {
      weights: inp.weights,
      iouThr: inp.iou_thr,
      skipBoxThr: inp.skip_box_thr,
      confType: inp.conf_type as ConfType | undefined,
      allowsOverflow: inp.allows_overflow,
      warn,
    });
    writeJsonAtomic(outFile, { boxes: res.boxes, scores: res.scores, labels: res.labels });
    return { input: inp.boxes.reduce((t, m) => t + m.length, 0), fused: res.boxes.length };
  } catch (e) {
    if (e instanceof WbfInputError) throw new InputError(inFile, undefined, e.message);
    throw e;
  }
}
