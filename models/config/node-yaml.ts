// Config files on disk (Node): the YamlResolver of load-yaml.ts over the file system. `_BASE_` is
// relative to the including file, absolute, or ~-prefixed (the home folder), as in detectron2.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { loadYamlLayers, type YamlLayer, type YamlResolver } from './load-yaml';

export const nodeYamlResolver: YamlResolver = {
  resolve: (base, from) => (base.startsWith('~') ? path.join(homedir(), base.slice(1)) : path.resolve(path.dirname(from), base)),
  read: (name) => readFileSync(name, 'utf8'),
};

/** The files of a config in merge order: the deepest base first, `file` itself last. */
export function loadYamlWithBase(file: string): YamlLayer[] {
  return loadYamlLayers(path.resolve(file), nodeYamlResolver, { shown: file });
}
