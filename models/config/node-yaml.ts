// Config files on disk (Node): the YamlResolver of load-yaml.ts over the file system. `_BASE_` is
// relative to the including file, absolute, or ~-prefixed (the home folder), as in detectron2.
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { InputError } from '../../runtime/errors';
import { loadYamlLayers, MAX_CONFIG_BYTES, type YamlLayer, type YamlResolver } from './load-yaml';

export const nodeYamlResolver: YamlResolver = {
  resolve: (base, from) => (base.startsWith('~') ? path.join(homedir(), base.slice(1)) : path.resolve(path.dirname(from), base)),
  read: readConfigFile,
};

/** The files of a config in merge order: the deepest base first, `file` itself last. */
export function loadYamlWithBase(file: string): YamlLayer[] {
  return loadYamlLayers(path.resolve(file), nodeYamlResolver, { shown: file });
}

/** A config file's text: a regular file (not a directory, device or FIFO: `/dev/zero` would read
 *  forever) of at most MAX_CONFIG_BYTES. */
function readConfigFile(name: string): string {
  let st;
  try {
    st = statSync(name);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message));
  }
  if (st.isDirectory()) throw new InputError(name, undefined, 'is a directory, expected a YAML config file');
  if (!st.isFile()) throw new InputError(name, undefined, 'is not a regular file (a device, pipe or socket), expected a YAML config file');
  if (st.size > MAX_CONFIG_BYTES) throw new InputError(name, undefined, `is ${st.size} bytes, over the limit of ${MAX_CONFIG_BYTES} bytes for a config file`);
  try {
    return readFileSync(name, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message));
  }
}
