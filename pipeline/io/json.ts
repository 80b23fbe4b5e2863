// Reading a JSON file: a missing file, a directory, invalid JSON, a file over MAX_JSON_BYTES or
// nesting deeper than MAX_JSON_DEPTH is an InputError naming the file (limits in io/limits.ts).
import { readFileSync } from 'node:fs';
import { InputError } from '../../runtime/errors';
import { MAX_JSON_BYTES, checkInputFile, checkJsonDepth, quoteInput } from './limits';

export function readJsonFile(file: string): unknown {
  checkInputFile(file, MAX_JSON_BYTES, 'JSON file');
  return parseJsonText(file, readFileSync(file, 'utf8'));
}

/** JSON.parse with the depth limit checked first; errors name `file`. */
export function parseJsonText(file: string, text: string): unknown {
  checkJsonDepth(file, text);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(file, undefined, `not valid JSON (${quoteInput((e as Error).message, 200)})`);
  }
}
