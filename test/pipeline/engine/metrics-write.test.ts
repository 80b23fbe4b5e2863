// metrics.json is appended, not written through the durable writer: a failing disk still gives one
// WriteError line naming the file instead of a raw Node error with a stack.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WriteError } from '../../../runtime/errors';
import { MetricsWriter, trimMetricsAfter } from '../../../pipeline/engine/metrics';
import { makeTempDir } from '../tmp';

const { dir, cleanup } = makeTempDir('metrics');
afterAll(cleanup);

describe('MetricsWriter', () => {
  it('a path it cannot write is a WriteError naming the file', () => {
    writeFileSync(join(dir, 'blocker'), 'a file where the output directory should be');
    const file = join(dir, 'blocker', 'metrics.json');
    expect(() => new MetricsWriter(file)).toThrow(WriteError);
    const w = new MetricsWriter(join(dir, 'ok', 'metrics.json'));
    w.write(1, { loss: 1 });
    Object.defineProperty(w, 'file', { value: file });
    expect(() => w.write(2, { loss: 1 })).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: could not write: a component of the path is not a directory \\(ENOTDIR\\)$`));
  });

  it('trimMetricsAfter (resume): drops lines after the checkpoint and a line cut short, keeps the rest as written', () => {
    const file = join(dir, 'trim', 'metrics.json');
    const w = new MetricsWriter(file);
    for (const i of [0, 1, 2, 3]) w.write(i, { loss: i / 2 });
    w.write(1, { 'segm/AP': 5 });
    writeFileSync(file, readFileSync(file, 'utf8') + 'not json, kept\n{"iteration": 4, "lo');
    expect(trimMetricsAfter(file, 1)).toBe(3); // iterations 2 and 3, and the cut line
    expect(readFileSync(file, 'utf8')).toBe('{"iteration":0,"loss":0}\n{"iteration":1,"loss":0.5}\n{"iteration":1,"segm/AP":5}\nnot json, kept\n');
    expect(trimMetricsAfter(file, 1)).toBe(0);
    expect(trimMetricsAfter(join(dir, 'none.json'), 1)).toBe(0);
    expect(trimMetricsAfter(file, -1)).toBe(3);
    expect(readFileSync(file, 'utf8')).toBe('not json, kept\n');
  });
});
