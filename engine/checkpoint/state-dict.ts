// Turns an unpickled checkpoint object into an ordered name -> HostTensor map: unwraps a
// top-level {'model': ...} (how Detectron2/fvcore and the model zoo wrap weights), flattens
// nested dicts with '.', and lists whatever is not a tensor (iteration counts, optimizer
// scalars, '__author__') instead of silently dropping it.
//
// The walk is iterative and bounded (limits.ts): a dict inside itself is refused, a dict reached a
// second time through another key is flattened only at its first path (the others are listed as
// skipped), a tensor reached through several names is materialised once, nesting and the number
// of entries are capped, and every tensor's bytes come out of one MaterializeBudget.
import { InputError } from '../../runtime/errors';
import { isHostTensor, type HostTensor } from './host-tensor';
import { describeValue as describe, keyText, MAX_ENTRIES, MAX_NESTING, MaterializeBudget } from './limits';
import { NumpyArray } from './numpy-array';
import { TorchTensorRef } from './torch-tensor';

export interface StateDict {
  tensors: Map<string, HostTensor>;
  /** Entries that are not tensors, as "path (what)". */
  ignored: string[];
}

export interface StateDictOptions {
  /** The bytes the file holds (uncompressed): sizes the MaterializeBudget. Absent: no
   *  file-relative budget, only the per-tensor limits. */
  sourceBytes?: number;
}

interface Frame {
  prefix: string;
  map: Map<unknown, unknown>;
  entries: Iterator<[unknown, unknown]>;
}

export function toStateDict(root: unknown, file: string, opts: StateDictOptions = {}): StateDict {
  const tensors = new Map<string, HostTensor>();
  const ignored: string[] = [];
  const budget = new MaterializeBudget(file, opts.sourceBytes ?? Number.MAX_SAFE_INTEGER / 4);
  const materialized = new Map<object, HostTensor>();
  let count = 0;
  const counted = (where: string): void => {
    if (++count > MAX_ENTRIES) throw new InputError(file, where, `more than ${MAX_ENTRIES} entries after flattening (limit for a checkpoint)`);
  };

  let top = root;
  if (root instanceof Map && root.get('model') instanceof Map) {
    top = root.get('model');
    for (const k of root.keys()) {
      if (k === 'model') continue;
      counted(keyText(k));
      ignored.push(`${keyText(k)} (outside 'model')`);
    }
  }
  if (!(top instanceof Map)) throw new InputError(file, undefined, `expected a dict of tensors at the top level, found ${describe(top)}`);

  const tensorOf = (prefix: string, v: unknown): HostTensor | undefined => {
    if (!(v instanceof TorchTensorRef || v instanceof NumpyArray || isHostTensor(v))) return undefined;
    const seen = materialized.get(v as object);
    if (seen) return seen;
    const where = `tensor "${prefix}"`;
    let t: HostTensor;
    try {
      const reserve = (bytes: number) => budget.take(where, bytes, 'this tensor');
      t = v instanceof TorchTensorRef ? v.materialize(reserve) : v instanceof NumpyArray ? v.toTensor(reserve) : (v as HostTensor);
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw new InputError(file, where, (err as Error).message);
    }
    materialized.set(v as object, t);
    return t;
  };

  // Depth-first in insertion order with an explicit stack: `onPath` holds the dicts being walked
  // (one found again is a cycle), `firstPath` every dict already walked and where.
  const onPath = new Set<Map<unknown, unknown>>([top]);
  const firstPath = new Map<Map<unknown, unknown>, string>([[top, '']]);
  const frames: Frame[] = [{ prefix: '', map: top, entries: top.entries() }];
  while (frames.length) {
    const f = frames[frames.length - 1]!;
    const next = f.entries.next();
    if (next.done) {
      onPath.delete(f.map);
      frames.pop();
      continue;
    }
    const [k, v] = next.value;
    const prefix = f.prefix ? `${f.prefix}.${keyText(k)}` : keyText(k);
    const t = tensorOf(prefix, v);
    if (t) {
      counted(prefix);
      if (tensors.has(prefix)) throw new InputError(file, `tensor "${prefix}"`, 'name occurs twice after flattening');
      tensors.set(prefix, t);
    } else if (v instanceof Map) {
      if (onPath.has(v)) {
        const at = firstPath.get(v)!;
        throw new InputError(file, `"${prefix}"`, `self-referencing object: this dict contains itself (it is the dict at ${at ? `"${at}"` : 'the top level'}); a state dict is a tree`);
      }
      const first = firstPath.get(v);
      if (first !== undefined) {
        counted(prefix);
        ignored.push(`${prefix} (the same dict object as "${first}", flattened there only)`);
        continue;
      }
      if (frames.length >= MAX_NESTING) {
        throw new InputError(file, `"${prefix.length > 200 ? `${prefix.slice(0, 200)}...` : prefix}"`, `dicts nested more than ${MAX_NESTING} deep (limit for a checkpoint)`);
      }
      onPath.add(v);
      firstPath.set(v, prefix);
      frames.push({ prefix, map: v, entries: v.entries() });
    } else {
      counted(prefix);
      ignored.push(`${prefix} (${describe(v)})`);
    }
  }
  return { tensors, ignored };
}
