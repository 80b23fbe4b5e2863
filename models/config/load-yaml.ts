// Reads a config YAML and the chain of `_BASE_` files it inherits from, the way detectron2's
// `CfgNode.load_yaml_with_base` does: `_BASE_` is a path relative to the including file (or
// absolute, or ~-prefixed), bases are loaded recursively, and the including file's values win.
// YAML is parsed as YAML 1.1, like PyYAML, so that the original files mean the same here.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { InputError, UserError } from '../../runtime/errors';

export interface YamlLayer {
  file: string;
  data: Record<string, unknown>;
}

export const BASE_KEY = '_BASE_';

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
    layers.push(...loadYamlWithBase(target, [...chain, abs]));
  }
  layers.push({ file, data });
  return layers;
}

function readYamlMapping(abs: string, shown: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read config ${shown}: ${(err as Error).message}`);
  }
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    throw new InputError(shown, pos ? `line ${pos.line}, column ${pos.col}` : undefined, `invalid YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:$/, '')}`);
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new InputError(shown, undefined, 'a config file must be a mapping of KEY: value');
  return value as Record<string, unknown>;
}
