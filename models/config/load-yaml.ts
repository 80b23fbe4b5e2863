// Reads a config YAML and the chain of `_BASE_` files it inherits from, the way detectron2's
// `CfgNode.load_yaml_with_base` does: `_BASE_` is a path relative to the including file (or
// absolute, or ~-prefixed), bases are loaded recursively, and the including file's values win.
// YAML is parsed as YAML 1.1, like PyYAML, so that the original files mean the same here.
// Where the text comes from is a `YamlResolver`: files on disk in Node (node-yaml.ts), an
// in-memory map of prefetched texts in a browser (`mapYamlResolver`); this file reads no files.
import { parseDocument } from 'yaml';
import { InputError, UserError } from '../../runtime/errors';

export interface YamlLayer {
  file: string;
  data: Record<string, unknown>;
}

/** Where config texts come from: a name for `_BASE_` seen in `from`, and the text of a name. */
export interface YamlResolver {
  /** The name (path, URL, key) of `base`, a `_BASE_` value written in the config named `from`. */
  resolve(base: string, from: string): string;
  /** The text of a resolved name; throws (any error) when there is none. */
  read(name: string): string;
}

export const BASE_KEY = '_BASE_';

/** Limits (listed with the application's others in pipeline/io/limits.ts): a config file is a
 *  regular file of at most MAX_CONFIG_BYTES (checked by the file resolver), and a document expands
 *  at most MAX_YAML_ALIASES aliases (a "billion laughs" document is refused instead of filling
 *  memory). */
export const MAX_CONFIG_BYTES = 2 ** 20;
export const MAX_YAML_ALIASES = 100;

/** The layers of a config in merge order: the deepest base first, `name` itself last. `name` is
 *  read through `resolver` unless `text` is given; `shown` names it in errors (default `name`). */
export function loadYamlLayers(name: string, resolver: YamlResolver, opts: { text?: string; shown?: string; baseOf?: { file: string; base: string } } = {}, chain: string[] = []): YamlLayer[] {
  const file = opts.shown ?? name;
  let text = opts.text;
  if (chain.includes(name)) {
    const cycle = [...chain.slice(chain.indexOf(name)), name].map(baseName).join(' -> ');
    throw new InputError(chain[chain.length - 1]!, BASE_KEY, `inheritance cycle: ${cycle}`);
  }
  if (text === undefined) {
    try {
      text = resolver.read(name);
    } catch (err) {
      if (err instanceof InputError || err instanceof UserError) throw err;
      // A base that cannot be read is a fault of the file that names it.
      if (opts.baseOf) throw new InputError(opts.baseOf.file, BASE_KEY, `${opts.baseOf.base}: ${(err as Error).message}`);
      throw new UserError(`cannot read config ${file}: ${(err as Error).message}`);
    }
  }
  const data = parseYamlMapping(text, file);
  const base = data[BASE_KEY];
  delete data[BASE_KEY];
  const layers: YamlLayer[] = [];
  if (base !== undefined && base !== null) {
    if (typeof base !== 'string' || base === '') throw new InputError(file, BASE_KEY, `expected a file path, got ${JSON.stringify(base)}`);
    if (/^https?:\/\//.test(base)) throw new InputError(file, BASE_KEY, `URLs are not supported (${base}); download the file and refer to it by path`);
    // Only YAML files: a base such as /etc/shadow is refused by name, so no error can quote it.
    if (!/\.ya?ml$/i.test(base)) throw new InputError(file, BASE_KEY, `${base} is not a .yaml or .yml file`);
    layers.push(...loadYamlLayers(resolver.resolve(base, name), resolver, { baseOf: { file, base } }, [...chain, name]));
  }
  layers.push({ file, data });
  return layers;
}

/** The `_BASE_` value of a config text (undefined when it has none): what a resolver that
 *  prefetches texts (a browser fetching over HTTP) needs to know before loading. */
export function yamlBaseOf(text: string, shown: string): string | undefined {
  const base = parseYamlMapping(text, shown)[BASE_KEY];
  return typeof base === 'string' && base !== '' ? base : undefined;
}

/** `/`-separated name resolution without node:path: `base` relative to the folder of `from`. */
export function joinRelative(from: string, base: string): string {
  if (base.startsWith('/')) return base;
  const parts = from.split('/').slice(0, -1);
  for (const p of base.split('/')) {
    if (p === '..' && parts.length && parts[parts.length - 1] !== '..') parts.pop();
    else if (p !== '.' && p !== '') parts.push(p);
  }
  return parts.join('/');
}

/** A resolver over texts held in memory, keyed by `/`-separated names. */
export function mapYamlResolver(texts: ReadonlyMap<string, string>): YamlResolver {
  return {
    resolve: (base, from) => joinRelative(from, base),
    read(name) {
      const t = texts.get(name);
      if (t === undefined) throw new Error(`no such config (known: ${[...texts.keys()].join(', ')})`);
      return t;
    },
  };
}

const baseName = (f: string): string => f.split(/[\\/]/).pop() ?? f;

function parseYamlMapping(text: string, shown: string): Record<string, unknown> {
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
