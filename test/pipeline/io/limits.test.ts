// Input limits checked before allocation (pipeline/io/limits.ts) and the line-bounded CSV reader.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readLines } from '../../../pipeline/io/csv';
import { readJsonFile } from '../../../pipeline/io/json';
import { checkImageSize, checkInputFile, checkJsonDepth, quoteInput } from '../../../pipeline/io/limits';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('limits');
afterAll(tmp.cleanup);

async function lines(file: string, max?: number): Promise<string[]> {
  const out: string[] = [];
  for await (const l of readLines(file, max)) out.push(l);
  return out;
}

describe('input limits', () => {
  it('quoteInput escapes control characters and cuts long text', () => {
    expect(quoteInput('a\u0000b\tc\u001b')).toBe('a\\0b\\tc\\x1b');
    expect(quoteInput('x'.repeat(500), 10)).toBe('xxxxxxxxxx... (500 characters)');
  });

  it('checks image sizes against the caps', () => {
    expect(() => checkImageSize('f', undefined, 704, 520)).not.toThrow();
    expect(() => checkImageSize('f', 'image id 1', 100000, 100000)).toThrow(/f: image id 1: image size 100000x100000/);
    expect(() => checkImageSize('f', undefined, 46341, 46341)).toThrow(/over the limit/); // > 2^31 pixels
  });

  it('refuses directories and devices as input files', () => {
    expect(() => checkInputFile(tmp.dir)).toThrow(/is a directory, expected a file/);
    expect(() => checkInputFile('/dev/zero')).toThrow(/is not a regular file/);
    expect(() => checkInputFile(join(tmp.dir, 'none'))).toThrow(/file is missing/);
  });

  it('measures JSON depth without recursion, strings and escapes included', () => {
    expect(() => checkJsonDepth('f', '{"a": "[[[[[[\\"[[[", "b": [[1]]}', 3)).not.toThrow();
    expect(() => checkJsonDepth('f', '[[[[1]]]]', 3)).toThrow(/f: JSON nests deeper than 3 levels/);
    const file = join(tmp.dir, 'deep.json');
    writeFileSync(file, '['.repeat(200_000) + ']'.repeat(200_000));
    expect(() => readJsonFile(file)).toThrow(/deep\.json: JSON nests deeper than 512 levels/);
  });

  it('reads lines (CRLF, no final newline) and stops at a line over the cap', async () => {
    const file = join(tmp.dir, 'a.csv');
    writeFileSync(file, 'h1,h2\r\nx,y\n\nlast');
    expect(await lines(file)).toEqual(['h1,h2', 'x,y', '', 'last']);
    writeFileSync(file, `h\n${'9'.repeat(5000)}\n`);
    await expect(lines(file, 1000)).rejects.toThrow(/a\.csv: line 2: is longer than 1000 characters/);
    await expect(lines(tmp.dir)).rejects.toThrow(/is a directory/);
  });
});
