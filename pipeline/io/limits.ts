// Limits on inputs, checked before memory is allocated for them. Every cap of the application is
// listed here (the YAML ones live beside the YAML reader, models/config/load-yaml.ts, which cannot
// import pipeline/; checkpoint limits are in engine/checkpoint/limits.ts):
//
//   MAX_LINE_CHARS     16 Mi characters in one CSV line (train.csv, submission.csv). The longest
//                      possible annotation of a 704x520 image (every other pixel a run) is ~2.6 MB;
//                      a longer line fails when the cap is reached, before the rest is read.
//   MAX_IMAGE_SIDE     32768 pixels per image side (PNG headers, train.csv and COCO sizes).
//   MAX_IMAGE_PIXELS   2^27 pixels per image (134 M; the Sartorius images have 366 080). Pixel
//                      indices, RLE run sums and bounding boxes then stay far below 2^31, so
//                      Int32 run arrays and `|0` arithmetic are exact. PNG sizes are read from the
//                      IHDR chunk, before the image is decoded.
//   MAX_JSON_BYTES     512 MiB per JSON file (V8's longest string is just under 2^29 characters).
//   MAX_JSON_DEPTH     512 levels of [ ] / { } nesting, counted on the text before JSON.parse.
//   MAX_CONFIG_BYTES   1 MiB per YAML config file; every config and `_BASE_` a regular .yaml/.yml
//                      file (models/config/load-yaml.ts, so `_BASE_: /dev/zero` or /etc/shadow
//                      is refused by name, never read).
//   MAX_YAML_ALIASES   100 alias expansions per YAML document (load-yaml.ts).
//
// Messages that quote input text go through `quoteInput` (control characters and NUL escaped,
// long text cut) so that a hostile file cannot write raw bytes or megabytes to the terminal.
import { statSync } from 'node:fs';
import { InputError } from '../../runtime/errors';

export const MAX_LINE_CHARS = 16 * 2 ** 20;
export const MAX_IMAGE_SIDE = 32768;
export const MAX_IMAGE_PIXELS = 2 ** 27;
export const MAX_JSON_BYTES = 512 * 2 ** 20;
export const MAX_JSON_DEPTH = 512;

/** Control characters (NUL included) as escapes, and at most `max` characters (then "..."). */
export function quoteInput(text: string, max = 120): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  // eslint-disable-next-line no-control-regex
  const esc = cut.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    const code = c.charCodeAt(0);
    return code === 0 ? '\\0' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\x${code.toString(16).padStart(2, '0')}`;
  });
  return text.length > max ? `${esc}... (${text.length} characters)` : esc;
}

/** Width and height within MAX_IMAGE_SIDE / MAX_IMAGE_PIXELS, or an InputError naming `file`. */
export function checkImageSize(file: string, where: string | undefined, width: number, height: number): void {
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
    throw new InputError(
      file,
      where,
      `image size ${width}x${height} (WxH) is over the limit (${MAX_IMAGE_SIDE} pixels a side, ${MAX_IMAGE_PIXELS} pixels in all)`,
    );
  }
}

/**
 * An input file that can be read: it exists, is a regular file (not a directory, device or FIFO)
 * and, with `maxBytes`, is no larger. Returns its size. Errors are one-line InputErrors.
 */
export function checkInputFile(file: string, maxBytes?: number, what = 'file'): number {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(file, undefined, `${what} is missing`);
    if (code === 'ENOTDIR') throw new InputError(file, undefined, `${what} is missing (a component of the path is not a directory)`);
    if (code === 'EACCES') throw new InputError(file, undefined, 'permission denied');
    throw new InputError(file, undefined, `cannot be read (${code ?? (err as Error).message})`);
  }
  if (st.isDirectory()) throw new InputError(file, undefined, `is a directory, expected a ${what}`);
  if (!st.isFile()) throw new InputError(file, undefined, `is not a regular file (a device, pipe or socket), expected a ${what}`);
  if (maxBytes !== undefined && st.size > maxBytes) {
    throw new InputError(file, undefined, `is ${st.size} bytes, over the limit of ${maxBytes} bytes for a ${what}`);
  }
  return st.size;
}

/** Throws when `text` (JSON) nests deeper than MAX_JSON_DEPTH; an iterative scan, no recursion. */
export function checkJsonDepth(file: string, text: string, maxDepth = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > maxDepth) throw new InputError(file, undefined, `JSON nests deeper than ${maxDepth} levels (at character ${i + 1})`);
    } else if (c === 93 || c === 125) depth--;
  }
}
