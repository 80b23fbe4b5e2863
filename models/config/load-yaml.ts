// Reads a config YAML and the chain of `_BASE_` files it inherits from, the way detectron2's
// `CfgNode.load_yaml_with_base` does: `_BASE_` is a path relative to the including file (or
// absolute, or ~-prefixed), bases are loaded recursively, and the including file's values win.
// YAML is parsed as YAML 1.1, like PyYAML, so that the original files mean the same here.
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { InputError, UserError } from '../../runtime/errors';

export interface YamlLayer {
  file: string;
  data: Record<string, unknown>;
}

export const BASE_KEY = '_BASE_';

/** Limits (listed with the application's others in pipeline/io/limits.ts): a config file is a
 *  regular file of at most MAX_CONFIG_BYTES, and a document expands at most MAX_YAML_ALIASES
 *  aliases (a "billion laughs" document is refused instead of filling memory). */
export const MAX_CONFIG_BYTES = 2 ** 20;
export const MAX_YAML_ALIASES = 100;

/** The files of a config in merge order: the deepest base first, `file` itself last. */
export function loadYamlWithBase(file: string, chain: string[] = []): YamlLayer[] {
  const abs = path.resolve(file);
  if (chain.includes(abs)) {
    const cycle = [...chain.slice(chain.indexOf(abs)), abs].map((f) => path.basename(f)).join(' -> ');
    throw new InputError(chain[chain.length - 1]!, BASE_KEY, `inheritance cycle: ${cycle}`);
  }
  const data = readYamlMapping(abs, file);
  const base = data[BASE_KEY];
  delete data[BASE_KEY];
  const layers: YamlLayer[] = [];
  if (base !== undefined && base !== null) {
    if (typeof base !== 'string' || base === '') throw new InputError(file, BASE_KEY, `expected a file path, got ${JSON.stringify(base)}`);
    if (/^https?:\/\//.test(base)) throw new InputError(file, BASE_KEY, `URLs are not supported (${base}); download the file and refer to it by path`);
    const target = base.startsWith('~') ? path.join(homedir(), base.slice(1)) : path.resolve(path.dirname(abs), base);
    // Only YAML files: a base such as /etc/shadow is refused by name, so no error can quote it.
    if (!/\.ya?ml$/i.test(target)) throw new InputError(file, BASE_KEY, `${base} is not a .yaml or .yml file`);
    layers.push(...loadYamlWithBase(target, [...chain, abs]));
  }
  layers.push({ file, data });
  return layers;
}

function readYamlMapping(abs: string, shown: string): Record<string, unknown> {
  let text: string;
  try {
    const st = statSync(abs);
    if (st.isDirectory()) throw new InputError(shown, undefined, 'is a directory, expected a YAML config file');
    if (!st.isFile()) throw new InputError(shown, undefined, 'is not a regular file (a device, pipe or socket), expected a YAML config file');
    if (st.size > MAX_CONFIG_BYTES) throw new InputError(shown, undefined, `is ${st.size} bytes, over the limit of ${MAX_CONFIG_BYTES} bytes for a config file`);
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code ?? (err as Error).message;
    throw new UserError(`cannot read config ${shown}: ${why}`);
  }
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    throw new InputError(shown, pos ? `line ${pos.line}, column ${pos.col}` : undefined, `invalid YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:$/, '')}`);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
  } catch (err) {
    if (/alias/i.test((err as Error).message)) throw new InputError(shown, undefined, `too many YAML alias expansions (limit ${MAX_YAML_ALIASES}; a "billion laughs" document?)`);
    throw new InputError(shown, undefined, `invalid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new InputError(shown, undefined, 'a config file must be a mapping of KEY: value');
  return value as Record<string, unknown>;
}
