import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { InputError, UserError } from '../../../runtime/errors';
import { CfgNode, loadConfig } from '../../../models/config/config';
import { CELLGPU_ONLY_KEYS } from '../../../models/config/defaults';
import { fixtureDir, fixtureManifest, fixtureModels } from '../fixture-util';

const CONFIGS = path.resolve(__dirname, '../../../configs');
const ORACLE = fixtureDir();
const config = (name: string) => path.join(CONFIGS, name);

function oracleConfig(model: string): unknown {
  const file = path.join(ORACLE, model, 'config.yaml');
  if (!existsSync(file)) throw new Error(`CenterMask2 oracle fixtures not found: ${file} (set CENTERMASK2_FIXTURES, or put them at ../shared/fixtures/centermask2 next to the repo)`);
  return parseYaml(readFileSync(file, 'utf8'), { version: '1.1' });
}

/** Writes small YAML files into a fresh directory and returns its path. */
function files(spec: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
  for (const [name, text] of Object.entries(spec)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected an InputError');
}

// Each fixture model folder's manifest.json names the config file the oracle ran (same file name
// under configs/ here) and the overrides it applied on top.
const ORACLE_MODELS = fixtureModels().map((model) => {
  const m = fixtureManifest(model);
  if (!m.config_file) throw new Error(`${ORACLE}/${model}/manifest.json has no config_file`);
  return [model, path.basename(m.config_file), Object.entries(m.overrides ?? {}).flatMap(([k, v]) => [k, String(v)])] as const;
});

describe('config: equality with the real CenterMask2', () => {
  it('finds the oracle fixture models', () => {
    expect(ORACLE_MODELS.length, `no model folder with config.yaml in ${ORACLE} (set CENTERMASK2_FIXTURES)`).toBeGreaterThan(0);
  });

  it.each(ORACLE_MODELS)('%s: defaults + %s + overrides equal the full config detectron2 dumped, key for key', (model, file, overrides) => {
    const cfg = loadConfig(config(file), [...overrides]);
    // cellgpu's own keys (SOLVER.MICRO_BATCH_SIZE) are all that Detectron2's dump lacks
    const values = cfg.values() as unknown as Record<string, Record<string, unknown>>;
    for (const key of CELLGPU_ONLY_KEYS) {
      const [section, name] = key.split('.') as [string, string];
      expect(name in values[section]!, key).toBe(true);
      delete values[section]![name];
    }
    expect(values).toEqual(oracleConfig(model));
  });

  it('full CenterMask V-39 3x: the full-size base values', () => {
    const cfg = loadConfig(config('centermask_V_39_eSE_FPN_ms_3x.yaml'));
    expect(cfg.MODEL.FPN.OUT_CHANNELS).toBe(256);
    expect([cfg.MODEL.FCOS.NUM_CLS_CONVS, cfg.MODEL.FCOS.NUM_BOX_CONVS, cfg.MODEL.FCOS.POST_NMS_TOPK_TEST]).toEqual([4, 4, 50]);
    expect([cfg.MODEL.ROI_MASK_HEAD.NUM_CONV, cfg.MODEL.ROI_MASK_HEAD.CONV_DIM]).toEqual([4, 256]);
    expect([cfg.MODEL.ROI_MASKIOU_HEAD.NUM_CONV, cfg.MODEL.ROI_MASKIOU_HEAD.CONV_DIM]).toEqual([4, 256]);
    expect(cfg.INPUT.MIN_SIZE_TRAIN).toEqual([640, 672, 704, 736, 768, 800]);
    expect([cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST]).toEqual([1333, 800, 1333]);
    expect([cfg.SOLVER.STEPS, cfg.SOLVER.MAX_ITER, cfg.SOLVER.BASE_LR]).toEqual([[210000, 250000], 270000, 0.01]);
    expect(cfg.OUTPUT_DIR).toBe('output/centermask/CenterMask-V-39-ms-3x');
  });

  it('LIVECell anchor-free SH-SY5Y: V-99, one class, LIVECell normalisation and schedule', () => {
    const cfg = loadConfig(config('livecell_anchor_free_shsy5y.yaml'));
    expect(cfg.MODEL.VOVNET.CONV_BODY).toBe('V-99-eSE');
    expect([cfg.MODEL.FCOS.NUM_CLASSES, cfg.MODEL.ROI_HEADS.NUM_CLASSES]).toEqual([1, 1]);
    expect([cfg.MODEL.FCOS.PRE_NMS_TOPK_TRAIN, cfg.MODEL.FCOS.PRE_NMS_TOPK_TEST]).toEqual([2000, 4000]);
    expect([cfg.MODEL.FCOS.POST_NMS_TOPK_TRAIN, cfg.MODEL.FCOS.POST_NMS_TOPK_TEST]).toEqual([15000, 3000]);
    expect([cfg.MODEL.FCOS.NUM_CLS_CONVS, cfg.MODEL.FPN.OUT_CHANNELS]).toEqual([4, 256]);
    expect(cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE).toBe(3000);
    expect([cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD]).toEqual([[128, 128, 128], [11.578, 11.578, 11.578]]);
    expect(cfg.INPUT.MIN_SIZE_TRAIN).toEqual([440, 480, 520, 560, 580, 620]);
    expect([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST]).toEqual([800, 1333]);
    expect([cfg.SOLVER.STEPS, cfg.SOLVER.MAX_ITER, cfg.SOLVER.CHECKPOINT_PERIOD]).toEqual([[18000, 19000], 20000, 250]);
    expect([cfg.SOLVER.WARMUP_FACTOR, cfg.SOLVER.WARMUP_ITERS]).toEqual([5e-5, 5000]);
    expect([cfg.TEST.DETECTIONS_PER_IMAGE, cfg.DATALOADER.NUM_WORKERS, cfg.OUTPUT_DIR]).toEqual([2000, 12, '']);
    expect(cfg.MODEL.ROI_MASK_HEAD.ASSIGN_CRITERION).toBe('ratio');
  });

  it('Sartorius demo config: three classes on the lite V-19-slim model, small images, short schedule', () => {
    const cfg = loadConfig(config('sartorius_centermask_lite_V_19_slim.yaml'));
    expect(cfg.MODEL.VOVNET.CONV_BODY).toBe('V-19-slim-eSE');
    expect([cfg.MODEL.FCOS.NUM_CLASSES, cfg.MODEL.ROI_HEADS.NUM_CLASSES]).toEqual([3, 3]);
    expect([cfg.MODEL.FPN.OUT_CHANNELS, cfg.MODEL.FCOS.NUM_CLS_CONVS, cfg.MODEL.MASKIOU_ON]).toEqual([128, 2, true]);
    expect(Math.max(...cfg.INPUT.MIN_SIZE_TRAIN)).toBeLessThanOrEqual(320);
    expect(cfg.SOLVER.MAX_ITER).toBeLessThanOrEqual(500);
    expect(cfg.SOLVER.STEPS.every((s) => s < cfg.SOLVER.MAX_ITER)).toBe(true);
    expect(cfg.MODEL.WEIGHTS).toBe('');
  });
});

describe('config: _BASE_ inheritance', () => {
  it('refuses alias bombs, non-YAML and non-regular _BASE_ files, and oversized configs, naming the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-limits-'));
    const write = (name: string, text: string) => {
      writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const laughs = write('laughs.yaml', 'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n');
    expect(() => loadConfig(laughs)).toThrow(/laughs\.yaml: too many YAML alias expansions/);
    expect(() => loadConfig(write('zero.yaml', '_BASE_: /dev/zero\n'))).toThrow(/zero\.yaml: _BASE_: \/dev\/zero is not a \.yaml or \.yml file/);
    expect(() => loadConfig(write('shadow.yaml', '_BASE_: /etc/shadow\n'))).toThrow(/_BASE_: \/etc\/shadow is not a \.yaml or \.yml file/);
    mkdirSync(path.join(dir, 'd.yaml'));
    expect(() => loadConfig(write('d-base.yaml', '_BASE_: d.yaml\n'))).toThrow(/d\.yaml: is a directory, expected a YAML config file/);
    expect(() => loadConfig('/dev/zero')).toThrow(/\/dev\/zero: is not a regular file/);
    expect(() => loadConfig(write('big.yaml', `# ${'x'.repeat(2 ** 20)}\n`))).toThrow(/big\.yaml: is \d+ bytes, over the limit of 1048576 bytes/);
  });

  it('resolves bases relative to the including file, recursively; the including file wins', () => {
    const dir = files({
      'a/top.yaml': '_BASE_: "../b/mid.yaml"\nSOLVER:\n  MAX_ITER: 3\n',
      'b/mid.yaml': '_BASE_: "sub/root.yaml"\nSOLVER:\n  MAX_ITER: 2\n  BASE_LR: 0.5\n',
      'b/sub/root.yaml': 'SOLVER:\n  MAX_ITER: 1\n  BASE_LR: 0.25\n  GAMMA: 0.5\n',
    });
    const cfg = loadConfig(path.join(dir, 'a/top.yaml'));
    expect([cfg.SOLVER.MAX_ITER, cfg.SOLVER.BASE_LR, cfg.SOLVER.GAMMA, cfg.SOLVER.MOMENTUM]).toEqual([3, 0.5, 0.5, 0.9]);
  });

  it('detects cycles', () => {
    const dir = files({ 'x.yaml': '_BASE_: y.yaml\n', 'y.yaml': '_BASE_: ./x.yaml\n' });
    const err = inputError(() => loadConfig(path.join(dir, 'x.yaml')));
    expect(err.message).toBe(`${path.join(dir, 'y.yaml')}: _BASE_: inheritance cycle: x.yaml -> y.yaml -> x.yaml`);
  });

  it('names a missing base and a URL base', () => {
    const dir = files({ 'x.yaml': '_BASE_: nowhere.yaml\n', 'u.yaml': '_BASE_: https://example.com/b.yaml\n' });
    // the file that names the base is at fault: an InputError about it (exit 2)
    expect(inputError(() => loadConfig(path.join(dir, 'x.yaml'))).message).toBe(`${path.join(dir, 'x.yaml')}: _BASE_: nowhere.yaml: no such file`);
    expect(inputError(() => loadConfig(path.join(dir, 'u.yaml'))).message).toMatch(/u\.yaml: _BASE_: URLs are not supported/);
  });
});

describe('config: validation', () => {
  const load = (yaml: string) => {
    const dir = files({ 'c.yaml': yaml });
    return () => loadConfig(path.join(dir, 'c.yaml'));
  };

  it('rejects an unknown key, naming the file and the key, and suggests the nearest', () => {
    const err = inputError(load('MODEL:\n  FCOS:\n    NUM_CLASS: 3\n'));
    expect(err.message).toMatch(/c\.yaml: MODEL\.FCOS\.NUM_CLASS: unknown config key; did you mean MODEL\.FCOS\.NUM_CLASSES\?$/);
    expect(inputError(load('MODEL:\n  FCOSS:\n    NUM_CLASSES: 3\n')).message).toMatch(/MODEL\.FCOSS: unknown config key; did you mean MODEL\.FCOS\?$/);
    // The right name in the wrong section: every section that has it is offered.
    expect(inputError(load('MODEL:\n  CONV_BODY: V-57-eSE\n')).message).toMatch(/MODEL\.CONV_BODY: unknown config key; did you mean MODEL\.VOVNET\.CONV_BODY\?$/);
  });

  it('type-checks values against the defaults, with file and key in the error', () => {
    expect(inputError(load('INPUT:\n  MIN_SIZE_TRAIN: 800\n')).message).toMatch(
      /c\.yaml: INPUT\.MIN_SIZE_TRAIN: expected a list of ints \(a YAML list like \[1, 2\] or a Python tuple like \(1, 2\)\), got 800$/,
    );
    expect(inputError(load('SOLVER:\n  MAX_ITER: 2.5\n')).message).toMatch(/SOLVER\.MAX_ITER: expected an int, got 2\.5$/);
    expect(inputError(load('MODEL:\n  MASK_ON: "sure"\n')).message).toMatch(/MODEL\.MASK_ON: expected a boolean \(True\/False\), got "sure"$/);
    expect(inputError(load('MODEL:\n  VOVNET:\n    CONV_BODY: 39\n')).message).toMatch(/CONV_BODY: expected a string, got 39$/);
    expect(inputError(load('MODEL:\n  FCOS: 3\n')).message).toMatch(/MODEL\.FCOS: is a section; expected a mapping of its keys/);
    expect(inputError(load('MODEL:\n  PIXEL_MEAN: [1, "x", 3]\n')).message).toMatch(/PIXEL_MEAN: expected a list of numbers, got \[1,"x",3\]/);
  });

  it('accepts what yacs accepts: tuples as strings, lists for tuples, ints for floats, yes/no booleans, null where allowed', () => {
    const cfg = load('SOLVER:\n  BASE_LR: 1\n  WEIGHT_DECAY: 1e-4\n  STEPS: [5, 6]\n  WEIGHT_DECAY_BIAS: 0.0\nINPUT:\n  MIN_SIZE_TRAIN: (512,)\nMODEL:\n  MASK_ON: yes\n')();
    expect([cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.STEPS, cfg.SOLVER.WEIGHT_DECAY_BIAS]).toEqual([1, 1e-4, [5, 6], 0]);
    expect([cfg.INPUT.MIN_SIZE_TRAIN, cfg.MODEL.MASK_ON]).toEqual([[512], true]);
  });

  it('rejects duplicate keys and a non-mapping document', () => {
    expect(inputError(load('SEED: 1\nSEED: 2\n')).message).toMatch(/c\.yaml: line 2, column 1: invalid YAML: Map keys must be unique$/);
    expect(inputError(load('- 1\n- 2\n')).message).toMatch(/c\.yaml: a config file must be a mapping of KEY: value$/);
  });

  it('reports YAML syntax errors with the line', () => {
    expect(inputError(load('SOLVER:\n  MAX_ITER: [1,\n  BASE_LR: 2\n')).message).toMatch(/c\.yaml: line 3, column 3: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a \]$/);
  });
});

describe('config: command-line overrides', () => {
  it('parses values as YAML, then as Python literals', () => {
    const cfg = new CfgNode().mergeFromList([
      'SOLVER.STEPS', '(100, 200)', 'INPUT.MIN_SIZE_TRAIN', '[256, 288]', 'MODEL.MASK_ON', 'True',
      'SOLVER.BASE_LR', '0.02', 'OUTPUT_DIR', '123', 'MODEL.WEIGHTS', '', 'SOLVER.WEIGHT_DECAY_BIAS', 'null',
    ]);
    expect(cfg.SOLVER.STEPS).toEqual([100, 200]);
    expect(cfg.INPUT.MIN_SIZE_TRAIN).toEqual([256, 288]);
    expect([cfg.MODEL.MASK_ON, cfg.SOLVER.BASE_LR, cfg.OUTPUT_DIR, cfg.MODEL.WEIGHTS, cfg.SOLVER.WEIGHT_DECAY_BIAS]).toEqual([true, 0.02, '123', '', null]);
  });

  it('rejects unknown keys, sections, bad values and a dangling key', () => {
    const cfg = new CfgNode();
    expect(inputError(() => cfg.mergeFromList(['SOLVER.MAX_ITERS', '3'])).message).toBe(
      '<command line>: SOLVER.MAX_ITERS: unknown config key; did you mean SOLVER.MAX_ITER?',
    );
    expect(inputError(() => cfg.mergeFromList(['SOLVER', '3'])).message).toMatch(/SOLVER: is a section, not a single value/);
    expect(inputError(() => cfg.mergeFromList(['SOLVER.MAX_ITER', 'many'])).message).toBe('<command line>: SOLVER.MAX_ITER: expected an int, got "many"');
    expect(() => cfg.mergeFromList(['SOLVER.MAX_ITER'])).toThrow(UserError);
  });
});

describe('config: freeze, clone and dump', () => {
  it('a frozen config refuses merges and assignments', () => {
    const cfg = loadConfig(config('centermask_lite_V_39_eSE_FPN_ms_4x.yaml'));
    expect(cfg.isFrozen()).toBe(true);
    expect(() => cfg.mergeFromList(['SOLVER.MAX_ITER', '3'])).toThrow(/the config is frozen/);
    expect(() => {
      (cfg.SOLVER as { MAX_ITER: number }).MAX_ITER = 3;
    }).toThrow(TypeError);
    expect(() => cfg.SOLVER.STEPS.push(1)).toThrow(TypeError);
    const copy = cfg.clone();
    expect(copy.isFrozen()).toBe(false);
    copy.mergeFromList(['SOLVER.MAX_ITER', '3']);
    expect([copy.SOLVER.MAX_ITER, cfg.SOLVER.MAX_ITER]).toEqual([3, 360000]);
  });

  it('dump() writes sorted YAML that loads back to the same config, floats with a decimal point', () => {
    const cfg = loadConfig(config('livecell_anchor_free_shsy5y.yaml'), ['SOLVER.WEIGHT_DECAY_BIAS', '0.0']);
    const text = cfg.dump();
    expect(text).toMatch(/^CUDNN_BENCHMARK: false\nDATALOADER:\n/);
    expect(text).toContain('    LOSS_GAMMA: 2.0\n');
    expect(text).toContain('  WEIGHT_DECAY_BIAS: 0.0\n');
    const dir = files({ 'dumped.yaml': text });
    expect(loadConfig(path.join(dir, 'dumped.yaml')).values()).toEqual(cfg.values());
  });
});
