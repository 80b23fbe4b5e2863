import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../runtime/errors';
import { readTrainCsvAll, TRAIN_COLUMNS } from '../../../pipeline/data/train-csv';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('traincsv');
afterAll(tmp.cleanup);
const HEADER = TRAIN_COLUMNS.join(',');
const row = (id: string, rle: string, extra = '6,4,shsy5y,11h30m00s,2019-06-16,s1,0 days 11:30:00') => `${id},${rle},${extra}`;

function csv(name: string, lines: string[]): string {
  const f = join(tmp.dir, name);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

describe('train.csv reader', () => {
  it('groups rows by image and keeps metadata', async () => {
    const f = csv('ok.csv', [HEADER, row('a', '1 2 7 2'), row('a', '16 3 22 3'), row('b', '6 1', '6,4,cort,1h00m00s,2020-01-01,"s,2",0 days 01:00:00')]);
    const imgs = await readTrainCsvAll(f);
    expect(imgs.map((i) => [i.id, i.instances.length, i.cellType])).toEqual([['a', 2, 'shsy5y'], ['b', 1, 'cort']]);
    expect(imgs[1]!.sampleId).toBe('s,2');
    expect(imgs[0]!.instances[1]!.line).toBe(3);
  });

  it.each([
    ['header.csv', ['id,annotation', row('a', '1 2')], /line 1: header is/],
    ['columns.csv', [HEADER, 'a,1 2,6,4'], /line 2: has 4 columns, expected 9/],
    ['width.csv', [HEADER, row('a', '1 2', 'x,4,shsy5y,t,d,s,e')], /line 2: column width is "x", expected a positive integer/],
    ['celltype.csv', [HEADER, row('a', '1 2', '6,4,neuron,t,d,s,e')], /line 2: cell_type is "neuron"/],
    ['pastend.csv', [HEADER, row('a', '20 6')], /line 2 \(image a\): annotation: pair 1: run 20\.\.25 goes past the image end \(24 pixels\)/],
    ['unsorted.csv', [HEADER, row('a', '10 2 1 2')], /line 2 \(image a\): annotation: pair 2: .*must be sorted/],
    ['overlap.csv', [HEADER, row('a', '1 5 3 2')], /overlaps the previous run/],
    ['noncontig.csv', [HEADER, row('a', '1 2'), row('b', '1 2'), row('a', '9 2')], /line 4: rows of image a are not contiguous/],
    ['size.csv', [HEADER, row('a', '1 2'), row('a', '9 2', '8,4,shsy5y,t,d,s,e')], /line 3 \(image a\): width\/height\/cell_type 8\/4\/shsy5y differ/],
    ['quote.csv', [HEADER, 'a,"1 2,6,4,shsy5y,t,d,s,e'], /line 2: a quoted field is not closed/],
    ['empty.csv', [HEADER, row('a', '')], /annotation is empty/],
  ])('rejects %s naming file and line', async (name, lines, msg) => {
    const f = csv(name, lines);
    const p = readTrainCsvAll(f);
    await expect(p).rejects.toThrow(InputError);
    await expect(readTrainCsvAll(f)).rejects.toThrow(msg);
    await expect(readTrainCsvAll(f)).rejects.toThrow(f);
  });

  it('reports a missing file', async () => {
    await expect(readTrainCsvAll(join(tmp.dir, 'nope.csv'))).rejects.toThrow(/nope\.csv: file is missing/);
  });
});
