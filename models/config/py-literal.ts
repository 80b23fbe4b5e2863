// Python literal syntax, as yacs/Detectron2 configs use it inside YAML strings: yacs passes every
// string value through ast.literal_eval, so `MIN_SIZE_TRAIN: (580, 600)` (a YAML string) becomes
// a tuple and `BASE_LR: 1e-4` (a string to PyYAML) a float. This parses the literal forms configs
// use: numbers, quoted strings, True/False/None, tuples and lists. Anything else is not a literal.

export class NotALiteral extends Error {}

export function parsePyLiteral(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const fail = (): never => {
    throw new NotALiteral(`not a Python literal: ${text}`);
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '(' || c === '[') return sequence(c === '(' ? ')' : ']', c === '(');
    if (c === "'" || c === '"') return quoted(c);
    const m = /^[+-]?(?:\d[\d_]*\.?[\d_]*(?:[eE][+-]?\d+)?|\.\d[\d_]*(?:[eE][+-]?\d+)?|True|False|None|inf|nan)/.exec(text.slice(i));
    if (!m) return fail();
    i += m[0].length;
    const tok = m[0];
    if (tok === 'True') return true;
    if (tok === 'False') return false;
    if (tok === 'None') return null;
    if (/inf|nan/.test(tok)) return fail(); // Python spells these float('inf'): not literals
    return Number(tok.replace(/_/g, ''));
  };
  const sequence = (close: string, tuple: boolean): unknown[] => {
    i++;
    const items: unknown[] = [];
    let sawComma = false;
    for (;;) {
      ws();
      if (text[i] === close) {
        i++;
        // (x) is just x in Python, not a 1-tuple; only (x,) is a tuple.
        if (tuple && items.length === 1 && !sawComma) return items[0] as unknown[];
        return items;
      }
      if (items.length > 0) {
        if (text[i] !== ',') return fail();
        i++;
        sawComma = true;
        ws();
        if (text[i] === close) continue;
      }
      items.push(value());
    }
  };
  const quoted = (q: string): string => {
    i++;
    let out = '';
    while (i < text.length && text[i] !== q) {
      if (text[i] === '\\' && i + 1 < text.length) {
        const e = text[i + 1]!;
        out += ({ n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[e] ?? `\\${e}`;
        i += 2;
      } else out += text[i++];
    }
    if (text[i] !== q) return fail();
    i++;
    return out;
  };
  const v = value();
  ws();
  if (i !== text.length) fail();
  return v;
}
