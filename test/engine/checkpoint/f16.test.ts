import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { f16ToF32, f32ToF16, floatToHalfBits, halfBitsToFloat } from '../../../engine/checkpoint/f16';

describe('f16 <-> f32', () => {
  it('decodes the landmark halves', () => {
    expect(halfBitsToFloat(0x3c00)).toBe(1);
    expect(halfBitsToFloat(0xc000)).toBe(-2);
    expect(halfBitsToFloat(0x7bff)).toBe(65504); // largest finite
    expect(halfBitsToFloat(0x0400)).toBe(2 ** -14); // smallest normal
    expect(halfBitsToFloat(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(halfBitsToFloat(0x7c00)).toBe(Infinity);
    expect(halfBitsToFloat(0xfc00)).toBe(-Infinity);
    expect(halfBitsToFloat(0x7e00)).toBeNaN();
    expect(Object.is(halfBitsToFloat(0x8000), -0)).toBe(true);
  });

  it('round-trips every non-NaN half exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    const nan = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) if (nan(h) ? !nan(back[h]!) : back[h] !== h) wrong.push(h);
    expect(wrong).toEqual([]);
  });

  it('rounds to nearest, ties to even, and overflows to infinity', () => {
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie between 0x3c00 and 0x3c01: even wins
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie between 0x3c01 and 0x3c02: even wins
    expect(floatToHalfBits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(floatToHalfBits(65520)).toBe(0x7c00); // rounds past the largest finite
    expect(floatToHalfBits(65519)).toBe(0x7bff);
    expect(floatToHalfBits(2 ** -25)).toBe(0); // tie with zero: even (zero)
    expect(floatToHalfBits(3 * 2 ** -26)).toBe(1);
    expect(floatToHalfBits(-(2 ** -30))).toBe(0x8000);
    expect(floatToHalfBits(2 ** -14 - 2 ** -25)).toBe(0x0400); // subnormal rounding carries into the exponent
  });

  it('rounds like torch on the fixture inputs', () => {
    const expected = JSON.parse(readFileSync(new URL('../../fixtures/checkpoints/expected.json', import.meta.url), 'utf8'));
    // The generator made this tensor with torch.tensor([...], dtype=torch.float16) from these floats.
    const inputs = [1.0, -2.5, 65504.0, 6.1035156e-5, 0.1, 0.0];
    expect(Array.from(f16ToF32(f32ToF16(inputs)))).toEqual(expected['zip.pth']['dtypes.f16'].values);
  });
});
