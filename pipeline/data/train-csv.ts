// Streaming reader of the competition's train.csv: one row per annotated instance, rows of an image
// contiguous. Reads line by line (the real file has 73k rows and ~100 MB) and yields one group per
// image with every row checked: column count, integer sizes, known cell type, RLE validity.
import { InputError } from '../../runtime/errors';
import { checkImageSize, quoteInput } from '../io/limits';
import { csvField, readCsvRecords } from '../io/csv';
import { isCellType, type CellType } from './cell-types';
import { RleFormatError, parseRle, runsToRle, type Runs } from '../../structures/rle';

export const TRAIN_COLUMNS = [
  'id',
  'annotation',
  'width',
  'height',
  'cell_type',
  'plate_time',
  'sample_date',
  'sample_id',
  'elapsed_timedelta',
] as const;

export interface TrainInstance {
  runs: Runs;
  /** 1-based line number in the CSV (header is line 1), for error messages downstream. */
  line: number;
}

export interface TrainImage {
  id: string;
  width: number;
  height: number;
  cellType: CellType;
  plateTime: string;
  sampleDate: string;
  sampleId: string;
  elapsedTimedelta: string;
  instances: TrainInstance[];
}

export interface ReadTrainOptions {
  /** Empty annotations are allowed in a truth file for images without objects (score only). */
  allowEmptyAnnotation?: boolean;
  /** Called once per line read, for progress bars. */
  onLine?: (line: number) => void;
}

function parseIntField(file: string, line: number, name: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0) {
    throw new InputError(file, `line ${line}`, `column ${name} is "${quoteInput(text)}", expected a positive integer`);
  }
  return Number(text);
}

/** Yields images in file order. Rows of one image must be contiguous (as in the competition file). */
export async function* readTrainCsv(file: string, opts: ReadTrainOptions = {}): AsyncGenerator<TrainImage> {
  let current: TrainImage | undefined;
  const finished = new Map<string, number>(); // id -> first line, for images already yielded
  let firstLineOfCurrent = 0;
  for await (const { fields: f, line: lineNo } of readCsvRecords(file, TRAIN_COLUMNS, opts.onLine)) {
    const [id, annotation, w, h, cellType, plateTime, sampleDate, sampleId, elapsed] = f as [
      string, string, string, string, string, string, string, string, string,
    ];
    if (id === '') throw new InputError(file, `line ${lineNo}`, 'column id is empty');
    const width = parseIntField(file, lineNo, 'width', w);
    const height = parseIntField(file, lineNo, 'height', h);
    checkImageSize(file, `line ${lineNo}`, width, height);
    if (!isCellType(cellType)) {
      throw new InputError(file, `line ${lineNo}`, `cell_type is "${quoteInput(cellType)}", expected shsy5y, astro or cort`);
    }
    let runs: Runs;
    try {
      runs = parseRle(annotation, width * height);
    } catch (e) {
      if (e instanceof RleFormatError) throw new InputError(file, `line ${lineNo} (image ${id})`, `annotation: ${e.message}`);
      throw e;
    }
    if (runs.starts.length === 0 && !opts.allowEmptyAnnotation) {
      throw new InputError(file, `line ${lineNo} (image ${id})`, 'annotation is empty');
    }
    if (current && current.id !== id) {
      finished.set(current.id, firstLineOfCurrent);
      yield current;
      current = undefined;
    }
    if (!current) {
      const seenAt = finished.get(id);
      if (seenAt !== undefined) {
        throw new InputError(
          file,
          `line ${lineNo}`,
          `rows of image ${id} are not contiguous (its first block starts at line ${seenAt}); sort the file by id`,
        );
      }
      current = {
        id,
        width,
        height,
        cellType,
        plateTime,
        sampleDate,
        sampleId,
        elapsedTimedelta: elapsed,
        instances: [],
      };
      firstLineOfCurrent = lineNo;
    } else if (current.width !== width || current.height !== height || current.cellType !== cellType) {
      throw new InputError(
        file,
        `line ${lineNo} (image ${id})`,
        `width/height/cell_type ${width}/${height}/${cellType} differ from the image's first row ` +
          `(line ${firstLineOfCurrent}: ${current.width}/${current.height}/${current.cellType})`,
      );
    }
    if (runs.starts.length > 0) current.instances.push({ runs, line: lineNo });
  }
  if (current) yield current;
}

/** Reads every image (for files that fit in memory as runs: the real train.csv does, ~100 MB of runs). */
export async function readTrainCsvAll(file: string, opts: ReadTrainOptions = {}): Promise<TrainImage[]> {
  const out: TrainImage[] = [];
  for await (const img of readTrainCsv(file, opts)) out.push(img);
  return out;
}

export function trainCsvHeader(): string {
  return TRAIN_COLUMNS.join(',') + '\n';
}

/** The CSV rows of one image. */
export function trainCsvRows(img: TrainImage): string {
  let s = '';
  const tail = [img.width, img.height, img.cellType, img.plateTime, img.sampleDate, img.sampleId, img.elapsedTimedelta]
    .map((v) => csvField(String(v)))
    .join(',');
  for (const inst of img.instances) s += `${csvField(img.id)},${runsToRle(inst.runs)},${tail}\n`;
  return s;
}
