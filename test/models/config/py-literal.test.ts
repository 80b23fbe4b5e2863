import { describe, expect, it } from 'vitest';
import { NotALiteral, parsePyLiteral } from '../../../models/config/py-literal';

describe('Python literals in config strings', () => {
  it('parses the forms Detectron2 configs use', () => {
    expect(parsePyLiteral('(580, 600)')).toEqual([580, 600]);
    expect(parsePyLiteral('("coco_2017_train",)')).toEqual(['coco_2017_train']);
    expect(parsePyLiteral("('a', \"b\")")).toEqual(['a', 'b']);
    expect(parsePyLiteral('()')).toEqual([]);
    expect(parsePyLiteral('(7)')).toBe(7); // parentheses alone do not make a tuple
    expect(parsePyLiteral('[[32, 64], [0.5, 1.0, 2.0]]')).toEqual([[32, 64], [0.5, 1, 2]]);
    expect(parsePyLiteral('1e-4')).toBe(1e-4);
    expect(parsePyLiteral('-.5')).toBe(-0.5);
    expect(parsePyLiteral('1_000')).toBe(1000);
    expect(parsePyLiteral('True')).toBe(true);
    expect(parsePyLiteral('None')).toBe(null);
    expect(parsePyLiteral(" 'it\\'s' ")).toBe("it's");
  });

  it('rejects what literal_eval would reject', () => {
    for (const bad of ['V-39-eSE', 'GN', 'inf', '(1, 2', '[1 2]', '1.5.3', "'open", 'os.system("x")', '']) {
      expect(() => parsePyLiteral(bad), bad).toThrow(NotALiteral);
    }
  });
});
