// The cellseg CLI end to end: bad input ends with exit code 2, one line naming file/line/problem
// and no output written; a good run writes its output.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('cli');
afterAll(tmp.cleanup);
const ROOT = new URL('../../../', import.meta.url).pathname;

function cellseg(...args: string[]) {
  const r = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'pipeline/cli/main.ts'), ...args], { encoding: 'utf8', cwd: tmp.dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('cellseg CLI', () => {
  it('score: a run past the image end fails with exit 2, names file and line, writes no JSON', () => {
    const truth = join(tmp.dir, 'truth.csv');
    writeFileSync(truth, 'id,annotation,width,height,cell_type,plate_time,sample_date,sample_id,elapsed_timedelta\na,20 6,6,4,cort,t,d,s,e\n');
    writeFileSync(join(tmp.dir, 'sub.csv'), 'id,predicted\na,1 2\n');
    const r = cellseg('score', '--truth', truth, '--submission', join(tmp.dir, 'sub.csv'), '--json', join(tmp.dir, 'score.json'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/truth\.csv: line 2 \(image a\): annotation: pair 1: run 20\.\.25 goes past the image end/);
    expect(r.err).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    expect(existsSync(join(tmp.dir, 'score.json'))).toBe(false);
  });

  it('fuse-boxes: writes the reference result for the two-model example', () => {
    const inp = join(tmp.dir, 'in.json');
    writeFileSync(
      inp,
      JSON.stringify({ boxes: [[[0.1, 0.1, 0.5, 0.5]], [[0.12, 0.1, 0.52, 0.5], [0.7, 0.7, 0.9, 0.9]]], scores: [[0.9], [0.6, 0.8]], labels: [[0], [0, 0]], iou_thr: 0.55, skip_box_thr: 0, conf_type: 'avg' }),
    );
    const r = cellseg('fuse-boxes', inp, join(tmp.dir, 'out.json'));
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(readFileSync(join(tmp.dir, 'out.json'), 'utf8'));
    expect(out.scores[0]).toBeCloseTo(0.75, 6);
    expect(out.scores[1]).toBeCloseTo(0.4, 12);
    const bad = join(tmp.dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ boxes: [[[0, 0, 1]]], scores: [[1]], labels: [[0]] }));
    const rb = cellseg('fuse-boxes', bad, join(tmp.dir, 'out2.json'));
    expect(rb.code).toBe(2);
    expect(rb.err).toMatch(/bad\.json: boxes\[0\]: must be a list of \[x0, y0, x1, y1\] boxes/);
  });
});
