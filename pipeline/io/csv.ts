// Minimal RFC 4180 line splitting: comma separated, fields optionally in double quotes with ""
// as an escaped quote. Records never span lines in the Sartorius files, so a quote left open at
// the end of a line is reported as an error rather than continued.

import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { InputError } from '../../runtime/errors';
import { MAX_LINE_CHARS, checkInputFile, quoteInput } from './limits';

export class CsvLineError extends Error {}

/**
 * The lines of a text file, streamed, without their "\n" / "\r\n". A line longer than
 * `maxChars` (MAX_LINE_CHARS of io/limits.ts) is an InputError as soon as that many characters are
 * buffered, so a one-line file of hundreds of MB fails fast instead of filling memory. A missing
 * file or a directory is an InputError before anything is read.
 */
export async function* readLines(file: string, maxChars = MAX_LINE_CHARS): AsyncGenerator<string> {
  checkInputFile(file);
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let lineNo = 0;
  const stream = createReadStream(file, { highWaterMark: 1 << 16 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      pending += decoder.write(chunk);
      let start = 0;
      for (;;) {
        const nl = pending.indexOf('\n', start);
        if (nl < 0) break;
        lineNo++;
        if (nl - start > maxChars) throw tooLong(file, lineNo, maxChars);
        yield pending.charCodeAt(nl - 1) === 13 && nl > start ? pending.slice(start, nl - 1) : pending.slice(start, nl);
        start = nl + 1;
      }
      pending = pending.slice(start);
      if (pending.length > maxChars) throw tooLong(file, lineNo + 1, maxChars);
    }
    pending += decoder.end();
    if (pending.length > maxChars) throw tooLong(file, lineNo + 1, maxChars);
    if (pending !== '') yield pending.endsWith('\r') ? pending.slice(0, -1) : pending;
  } finally {
    stream.destroy();
  }
}

/**
 * The records of a CSV file whose first line is the header `columns` (a BOM and spaces around
 * names aside), streamed: blank lines are skipped and every record must have exactly
 * `columns.length` fields. Each comes with its 1-based line number; `onLine` sees every line read
 * (progress bars). An empty file, a wrong header, a malformed line or a wrong column count is an
 * InputError naming file and line.
 */
export async function* readCsvRecords(file: string, columns: readonly string[], onLine?: (line: number) => void): AsyncGenerator<{ fields: string[]; line: number }> {
  let lineNo = 0;
  const split = (raw: string): string[] => {
    try {
      return splitCsvLine(raw);
    } catch (e) {
      if (e instanceof CsvLineError) throw new InputError(file, `line ${lineNo}`, e.message);
      throw e;
    }
  };
  for await (const raw of readLines(file)) {
    lineNo++;
    onLine?.(lineNo);
    if (lineNo === 1) {
      const header = split(raw.replace(/^\uFEFF/, '')).map((h) => h.trim());
      if (header.length !== columns.length || header.some((h, i) => h !== columns[i])) {
        throw new InputError(file, 'line 1', `header is "${quoteInput(raw)}", expected "${columns.join(',')}"`);
      }
      continue;
    }
    if (raw.trim() === '') continue;
    const fields = split(raw);
    if (fields.length !== columns.length) {
      throw new InputError(file, `line ${lineNo}`, `has ${fields.length} columns, expected ${columns.length} (${columns.join(',')})`);
    }
    yield { fields, line: lineNo };
  }
  if (lineNo === 0) throw new InputError(file, undefined, 'file is empty (no header)');
}

function tooLong(file: string, line: number, max: number): InputError {
  return new InputError(file, `line ${line}`, `is longer than ${max} characters (the limit of one CSV line); is this the right file?`);
}

export function splitCsvLine(line: string): string[] {
  if (line.endsWith('\r')) line = line.slice(0, -1);
  if (!line.includes('"')) return line.split(',');
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new CsvLineError('a quoted field is not closed on this line');
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      fields.push(value);
      if (i === line.length) return fields;
      if (line[i] !== ',') throw new CsvLineError(`unexpected character after a quoted field at column ${i + 1}`);
      i++;
    } else {
      const c = line.indexOf(',', i);
      if (c < 0) {
        fields.push(line.slice(i));
        return fields;
      }
      fields.push(line.slice(i, c));
      i = c + 1;
    }
  }
}

/** Quotes a field only when it needs it. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
