// metrics.json is appended, not written through the durable writer: a failing disk still gives one
// WriteError line naming the file instead of a raw Node error with a stack.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WriteError } from '../../../runtime/errors';
import { MetricsWriter } from '../../../pipeline/engine/metrics';
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
});
