// The CenterMask config: Detectron2's CfgNode semantics in TypeScript. Start from the defaults,
// merge YAML files (with _BASE_ inheritance) and `KEY VALUE` command-line overrides, each value
// type-checked against its default; unknown keys are errors that suggest the nearest valid key;
// `freeze()` makes it read-only; `dump()` writes it back as YAML that loads to the same config.
//
//   const cfg = loadConfig('configs/centermask_lite_V_39_eSE_FPN_ms_4x.yaml', ['MODEL.FCOS.NUM_CLASSES', '3']);
//   cfg.MODEL.FCOS.NUM_CLASSES // 3, typed
import { Document, Scalar, YAMLMap, YAMLSeq, parse as parseYaml, type Node } from 'yaml';
import { InputError, UserError } from '../../runtime/errors';
import { DEFAULTS } from './defaults';
import { loadYamlLayers, type YamlResolver } from './load-yaml';
import { loadYamlWithBase } from './node-yaml';
import { coerce, isLeaf, type Leaf, type SchemaNode, type ValuesOf } from './schema';
import { nearestKeys } from './suggest';

export type ConfigValues = ValuesOf<typeof DEFAULTS>;

/** Where command-line overrides are reported as coming from. */
export const COMMAND_LINE = '<command line>';

const SCHEMA: SchemaNode = DEFAULTS;
const ALL_KEYS: string[] = [];
(function collect(node: SchemaNode, prefix: string) {
  for (const [k, v] of Object.entries(node)) {
    ALL_KEYS.push(prefix + k);
    if (!isLeaf(v)) collect(v, `${prefix}${k}.`);
  }
})(SCHEMA, '');

function defaultValues(node: SchemaNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = isLeaf(v) ? structuredClone(v.value) : defaultValues(v);
  return out;
}

function deepFreeze(o: object): void {
  Object.freeze(o);
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) deepFreeze(v);
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// Declaration merging: a CfgNode has the config sections as typed properties.
export interface CfgNode extends ConfigValues {}

export class CfgNode {
  #frozen = false;

  /** A config holding the CenterMask2 defaults. */
  constructor() {
    Object.assign(this, defaultValues(SCHEMA));
  }

  isFrozen(): boolean {
    return this.#frozen;
  }

  /** Makes the config and everything in it read-only; merges then fail. */
  freeze(): this {
    this.#frozen = true;
    deepFreeze(this);
    return this;
  }

  clone(): CfgNode {
    const c = new CfgNode();
    Object.assign(c, structuredClone(this.values()));
    return c;
  }

  /** The values as a plain object (a deep copy). */
  values(): ConfigValues {
    return structuredClone({ ...this }) as ConfigValues;
  }

  /** Merges a YAML config text named `name` and its _BASE_ chain, read through `resolver` (a
   *  browser passes texts it fetched: load-yaml.ts's mapYamlResolver). */
  mergeFromYamlText(text: string, name: string, resolver: YamlResolver): this {
    for (const layer of loadYamlLayers(name, resolver, { text })) this.mergeFromObject(layer.data, layer.file);
    return this;
  }

  /** Merges a nested {KEY: value} mapping; `source` names it in errors. */
  mergeFromObject(data: Record<string, unknown>, source: string): this {
    this.#assertMutable();
    const merge = (target: Record<string, unknown>, schema: SchemaNode, values: Record<string, unknown>, prefix: string) => {
      for (const [k, raw] of Object.entries(values)) {
        const key = prefix + k;
        const s = schema[k];
        if (s === undefined) throw unknownKey(source, key);
        if (isLeaf(s)) target[k] = checked(source, key, s, raw);
        else if (isMapping(raw)) merge(target[k] as Record<string, unknown>, s, raw, `${key}.`);
        else throw new InputError(source, key, `is a section; expected a mapping of its keys (${Object.keys(s).slice(0, 4).join(', ')}, ...), got ${JSON.stringify(raw)}`);
      }
    };
    merge(this as unknown as Record<string, unknown>, SCHEMA, data, '');
    return this;
  }

  /**
   * Merges command-line overrides: ['MODEL.FCOS.NUM_CLASSES', '3', 'SOLVER.STEPS', '(100, 200)'].
   * Values are YAML literals (then Python literals, as yacs reads them).
   */
  mergeFromList(list: readonly string[]): this {
    this.#assertMutable();
    if (list.length % 2 !== 0) {
      throw new UserError(`config overrides come in KEY VALUE pairs; "${list[list.length - 1]}" has no value`);
    }
    for (let i = 0; i < list.length; i += 2) {
      const key = list[i]!;
      const text = list[i + 1]!;
      let node: Leaf<unknown> | SchemaNode = SCHEMA;
      const parts = key.split('.');
      for (let j = 0; j < parts.length; j++) {
        const next: Leaf<unknown> | SchemaNode | undefined = isLeaf(node) ? undefined : node[parts[j]!];
        if (next === undefined) throw unknownKey(COMMAND_LINE, parts.slice(0, j + 1).join('.'));
        node = next;
      }
      if (!isLeaf(node)) throw new InputError(COMMAND_LINE, key, 'is a section, not a single value; override its keys one by one');
      const value = checked(COMMAND_LINE, key, node, parseOverride(text, node.type === 'str'));
      let target = this as unknown as Record<string, unknown>;
      for (const p of parts.slice(0, -1)) target = target[p] as Record<string, unknown>;
      target[parts[parts.length - 1]!] = value;
    }
    return this;
  }

  /** YAML with sorted keys (as detectron2 dumps it); floats keep a decimal point. */
  dump(): string {
    const doc = new Document();
    doc.contents = toYamlNode(doc, SCHEMA, this as unknown as Record<string, unknown>);
    return doc.toString({ lineWidth: 0 });
  }

  #assertMutable(): void {
    if (this.#frozen) throw new UserError('the config is frozen; merge files and overrides before freeze()');
  }
}

function checked(source: string, key: string, leaf: Leaf<unknown>, raw: unknown): unknown {
  try {
    return coerce(leaf.type, raw);
  } catch (err) {
    throw new InputError(source, key, (err as Error).message);
  }
}

function unknownKey(source: string, key: string): InputError {
  const near = nearestKeys(key, ALL_KEYS);
  return new InputError(source, key, `unknown config key; did you mean ${near.join(' or ')}?`);
}

/** A command-line value: a YAML scalar/flow collection; strings for str keys are taken verbatim. */
function parseOverride(text: string, isStr: boolean): unknown {
  if (text === '') return '';
  let v: unknown;
  try {
    v = parseYaml(text, { version: '1.1' });
  } catch {
    return text;
  }
  if (isStr && typeof v !== 'string') return text;
  return v ?? (isStr ? text : null);
}

function toYamlNode(doc: Document, schema: SchemaNode, values: Record<string, unknown>): YAMLMap {
  const map = new YAMLMap();
  for (const k of Object.keys(schema).sort()) {
    const s = schema[k]!;
    const v = values[k];
    let node: Node;
    if (isLeaf(s)) {
      node = doc.createNode(v) as Node;
      if (s.type.startsWith('float')) markFloats(node);
    } else node = toYamlNode(doc, s, v as Record<string, unknown>);
    map.add(doc.createPair(k, node));
  }
  return map;
}

/** So that 1.0 is written "1.0", not "1", matching the Python dump. */
function markFloats(node: unknown): void {
  if (node instanceof Scalar && typeof node.value === 'number') node.minFractionDigits = 1;
  else if (node instanceof YAMLSeq) for (const item of node.items) markFloats(item);
}

/** Merges a YAML file on disk and its _BASE_ chain (Node). A function, not a method, so that a
 *  browser bundle that never calls it carries no file-system code. */
export function mergeFromFile(cfg: CfgNode, file: string): CfgNode {
  for (const layer of loadYamlWithBase(file)) cfg.mergeFromObject(layer.data, layer.file);
  return cfg;
}

/** Defaults + file (+ its bases) + overrides, frozen. */
export function loadConfig(file: string, overrides: readonly string[] = []): CfgNode {
  return mergeFromFile(new CfgNode(), file).mergeFromList(overrides).freeze();
}

/** Defaults + a config text (+ its bases, through `resolver`) + overrides, frozen: the entry point
 *  for configs that are not files (a browser). */
export function loadConfigFromText(text: string, name: string, resolver: YamlResolver, overrides: readonly string[] = []): CfgNode {
  return new CfgNode().mergeFromYamlText(text, name, resolver).mergeFromList(overrides).freeze();
}
