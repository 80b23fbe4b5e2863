import { describe, expect, it } from 'vitest';
import { InputError } from '../../../runtime/errors';
import { readPkl } from '../../../engine/checkpoint/pkl';
import { expectFixtureTensors, fixtureBytes } from './fixtures';

describe('Detectron2 .pkl (pickled numpy arrays)', () => {
  it.each(['detectron2_zoo_p2.pkl', 'detectron2_zoo_p5.pkl'])(
    '%s: float32/float64/int64/float16, fortran order, big-endian and 0-d arrays',
    (name) => {
      const sd = readPkl(fixtureBytes(name), name);
      expectFixtureTensors(name, sd.tensors);
      expect(sd.ignored).toEqual(["__author__ (outside 'model')", "matching_heuristics (outside 'model')"]);
    },
  );

  it('refuses a pickled os.system call, naming the global', () => {
    expect(() => readPkl(fixtureBytes('forbidden_global.pkl'), 'evil.pkl')).toThrow(InputError);
    expect(() => readPkl(fixtureBytes('forbidden_global.pkl'), 'evil.pkl')).toThrow(/^evil\.pkl: pickle offset \d+: refusing to load global "posix\.system"/);
  });

  it('ignores arrays it cannot convert outside the weights, and names them inside', () => {
    const outside = readPkl(fixtureBytes('strings_outside_model.pkl'), 'a.pkl');
    expect([...outside.tensors.keys()]).toEqual(['w']);
    expect(outside.ignored).toEqual(["classes (outside 'model')"]);
    expect(() => readPkl(fixtureBytes('strings_inside_model.pkl'), 'b.pkl')).toThrow(`b.pkl: tensor "names": numpy dtype 'U4' is not supported`);
  });

  it('rejects a pickle that is not a dict of tensors', () => {
    expect(() => readPkl(Uint8Array.from([0x80, 0x02, 0x4b, 0x07, 0x2e]), 'seven.pkl')).toThrow(
      'seven.pkl: expected a dict of tensors at the top level, found number 7',
    );
  });
});
