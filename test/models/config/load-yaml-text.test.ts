// Configs from text (a browser's path): the _BASE_ chain read through a YamlResolver over texts in
// memory gives the same config as the files on disk.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig, loadConfigFromText } from '../../../models/config/config';
import { joinRelative, mapYamlResolver, yamlBaseOf } from '../../../models/config/load-yaml';

describe('configs from text', () => {
  it('resolves _BASE_ relative to the including name', () => {
    expect(joinRelative('configs/a.yaml', 'b.yaml')).toBe('configs/b.yaml');
    expect(joinRelative('configs/sub/a.yaml', '../b.yaml')).toBe('configs/b.yaml');
    expect(joinRelative('/x/configs/a.yaml', './b.yaml')).toBe('/x/configs/b.yaml');
  });

  it('gives the same config as loadConfig on the files', () => {
    const texts = new Map<string, string>();
    let name = 'configs/synth_centermask_lite_V_19_slim_scratch.yaml';
    const top = name;
    for (;;) {
      const text = readFileSync(name, 'utf8');
      texts.set(name, text);
      const base = yamlBaseOf(text, name);
      if (!base) break;
      name = joinRelative(name, base);
    }
    expect(texts.size).toBeGreaterThan(1);
    const fromText = loadConfigFromText(texts.get(top)!, top, mapYamlResolver(texts), ['INPUT.MIN_SIZE_TEST', '128']);
    const fromFile = loadConfig(top, ['INPUT.MIN_SIZE_TEST', '128']);
    expect(fromText.values()).toEqual(fromFile.values());
  });

  it('names a missing base in its error', () => {
    const texts = new Map([['configs/a.yaml', '_BASE_: "missing.yaml"\nSEED: 3\n']]);
    expect(() => loadConfigFromText(texts.get('configs/a.yaml')!, 'configs/a.yaml', mapYamlResolver(texts))).toThrow(/configs\/a\.yaml: _BASE_: missing\.yaml: no such config/);
  });
});
