// Reading a JSON file: a missing file or invalid JSON is an InputError naming the file.
import { existsSync, readFileSync } from 'node:fs';
import { InputError } from '../../runtime/errors';

export function readJsonFile(file: string): unknown {
  if (!existsSync(file)) throw new InputError(file, undefined, 'file is missing');
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(file, undefined, `not valid JSON (${(e as Error).message})`);
  }
}
