import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readPngGray, writePngGray, writePngRgb } from '../../../pipeline/io/png';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('png');
afterAll(tmp.cleanup);

describe('PNG IO', () => {
  it('round-trips 8-bit gray and reads RGB as gray', () => {
    const data = Uint8Array.from({ length: 7 * 5 }, (_, i) => (i * 37) % 256);
    const f = join(tmp.dir, 'g.png');
    writePngGray(f, { width: 7, height: 5, data });
    expect(readPngGray(f)).toEqual({ width: 7, height: 5, data });
    const rgb = new Uint8Array(7 * 5 * 3);
    data.forEach((v, i) => rgb.fill(v, 3 * i, 3 * i + 3));
    writePngRgb(join(tmp.dir, 'c.png'), { width: 7, height: 5, data: rgb });
    expect(readPngGray(join(tmp.dir, 'c.png')).data).toEqual(data);
  });

  it('rejects missing, corrupt and wrongly sized images with the file name', () => {
    expect(() => readPngGray(join(tmp.dir, 'none.png'))).toThrow(/none\.png: PNG file is missing/);
    writeFileSync(join(tmp.dir, 'bad.png'), 'not a png');
    expect(() => readPngGray(join(tmp.dir, 'bad.png'))).toThrow(/bad\.png: not a readable PNG/);
    expect(() => readPngGray(join(tmp.dir, 'g.png'), { width: 704, height: 520 })).toThrow(/g\.png: image is 7x5 \(WxH\), expected 704x520/);
  });
});
