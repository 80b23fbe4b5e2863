// Minimal RFC 4180 line splitting: comma separated, fields optionally in double quotes with ""
// as an escaped quote. Records never span lines in the Sartorius files, so a quote left open at
// the end of a line is reported as an error rather than continued.

export class CsvLineError extends Error {}

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
