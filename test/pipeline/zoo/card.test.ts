// Model cards: written and read back unchanged; malformed cards (on write and on read) fail with
// the file and the offending key named.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readModelCard, writeModelCard, type ModelCard } from '../../../pipeline/zoo/export';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('card');
afterAll(tmp.cleanup);

const card: ModelCard = {
  name: 'centermask_lite_V_19_slim_synth',
  config: 'configs/sartorius_centermask_lite_V_19_slim.yaml',
  weights: 'models/zoo/centermask_lite_V_19_slim_synth.safetensors',
  data: { generator: 'cellseg synth', seed: 42, images: 60 },
  iterations: 3000,
  hardware: 'NVIDIA H100 80GB HBM3 (Dawn, Vulkan)',
  seconds_per_iteration: 0.21,
  metrics: { segm: { AP: 31.2, AP50: 60.5, APs: null }, bbox: { AP: 33.0, AP50: 61.9 }, competition_score: 0.284 },
  command: 'npx cellseg train --config-file configs/sartorius_centermask_lite_V_19_slim.yaml SOLVER.MAX_ITER 3000',
};

function clone(): Record<string, any> {
  return JSON.parse(JSON.stringify(card));
}

describe('model card', () => {
  it('round trips', () => {
    const f = join(tmp.dir, 'zoo', 'card.json');
    writeModelCard(f, card);
    expect(readModelCard(f)).toEqual(card);
    expect(readFileSync(f, 'utf8').endsWith('\n')).toBe(true);
  });

  it('a malformed card on disk is an error naming the file and the key', () => {
    const cases: [(c: Record<string, any>) => void, RegExp][] = [
      [(c) => delete c.hardware, /key "hardware": is missing/],
      [(c) => (c.metrics.segm.AP = '31'), /key "metrics\.segm\.AP": must be a finite number or null, got "31"/],
      [(c) => (c.data.seed = 1.5), /key "data\.seed": must be an integer/],
      [(c) => (c.data.images = 0), /key "data\.images": must be an integer >= 1, got 0/],
      [(c) => (c.metrics.competition_score = 28.4), /key "metrics\.competition_score": must be a number in \[0, 1\] or null/],
      [(c) => (c.seconds_per_iteration = -1), /key "seconds_per_iteration": must be a finite number >= 0/],
      [(c) => (c.iterations = '3000'), /key "iterations": must be an integer >= 0, got "3000"/],
      [(c) => (c.metric = {}), /key "metric": is not a model card key/],
      [(c) => (c.data = 'synth'), /key "data": must be an object \{generator, seed, images\}/],
      [(c) => (c.name = ''), /key "name": must be a non-empty string/],
    ];
    cases.forEach(([edit, re], i) => {
      const c = clone();
      edit(c);
      const f = join(tmp.dir, `bad${i}.json`);
      writeFileSync(f, JSON.stringify(c));
      expect(() => readModelCard(f)).toThrow(new RegExp(`bad${i}\\.json: ${re.source}`));
    });
    const f = join(tmp.dir, 'notjson.json');
    writeFileSync(f, '{"name": ');
    expect(() => readModelCard(f)).toThrow(/notjson\.json: not valid JSON/);
    expect(() => readModelCard(join(tmp.dir, 'missing.json'))).toThrow(/missing\.json: cannot read the model card/);
  });

  it('an invalid card is refused on write and nothing is written', () => {
    const f = join(tmp.dir, 'w.json');
    const c = clone();
    c.metrics.segm.AP = NaN; // JSON would silently turn it into null
    expect(() => writeModelCard(f, c as ModelCard)).toThrow(/w\.json: key "metrics\.segm\.AP": must be a finite number or null, got NaN/);
    expect(existsSync(f)).toBe(false);
  });
});
