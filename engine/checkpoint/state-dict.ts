// Turns an unpickled checkpoint object into an ordered name -> HostTensor map: unwraps a
// top-level {'model': ...} (how Detectron2/fvcore and the model zoo wrap weights), flattens
// nested dicts with '.', and lists whatever is not a tensor (iteration counts, optimizer
// scalars, '__author__') instead of silently dropping it.
import { InputError } from '../../runtime/errors';
import { isHostTensor, type HostTensor } from './host-tensor';
import { NumpyArray } from './numpy-array';
import { TorchTensorRef } from './torch-tensor';

export interface StateDict {
  tensors: Map<string, HostTensor>;
  /** Entries that are not tensors, as "path (what)". */
  ignored: string[];
}

export function toStateDict(root: unknown, file: string): StateDict {
  const tensors = new Map<string, HostTensor>();
  const ignored: string[] = [];
  let top = root;
  if (root instanceof Map && root.get('model') instanceof Map) {
    top = root.get('model');
    for (const k of root.keys()) if (k !== 'model') ignored.push(`${String(k)} (outside 'model')`);
  }
  if (!(top instanceof Map)) throw new InputError(file, undefined, `expected a dict of tensors at the top level, found ${describe(top)}`);

  const walk = (prefix: string, v: unknown): void => {
    let t: HostTensor | undefined;
    try {
      if (v instanceof TorchTensorRef) t = v.materialize();
      else if (v instanceof NumpyArray) t = v.toTensor();
      else if (isHostTensor(v)) t = v;
    } catch (err) {
      throw new InputError(file, `tensor "${prefix}"`, (err as Error).message);
    }
    if (t) {
      if (tensors.has(prefix)) throw new InputError(file, `tensor "${prefix}"`, 'name occurs twice after flattening');
      tensors.set(prefix, t);
    } else if (v instanceof Map) {
      for (const [k, child] of v) walk(prefix ? `${prefix}.${String(k)}` : String(k), child);
    } else {
      ignored.push(`${prefix} (${describe(v)})`);
    }
  };
  walk('', top);
  return { tensors, ignored };
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return `a sequence of ${v.length}`;
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (v instanceof Map) return 'a dict';
  if (typeof v === 'object') return `a ${v.constructor.name}`;
  return `${typeof v} ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)}`;
}
