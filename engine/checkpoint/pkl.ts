// Detectron2 model-zoo style .pkl files: a plain pickle (usually protocol 2 from Python 2, read as
// with encoding="latin1") of {'model': {name: numpy.ndarray}, '__author__': ...} or of a bare
// {name: ndarray} dict. Caffe2 'blobs' dicts load as they are; their names are not renamed.
import { ALLOWED_GLOBALS } from './allowed-globals';
import { unpickle } from './pickle';
import { toStateDict, type StateDict } from './state-dict';

export function unpicklePlain(bytes: Uint8Array, file: string): unknown {
  return unpickle(bytes, 0, { file, globals: ALLOWED_GLOBALS }).value;
}

export function readPkl(bytes: Uint8Array, file: string): StateDict {
  return toStateDict(unpicklePlain(bytes, file), file, { sourceBytes: bytes.byteLength });
}
