// A tiny uncompressed grayscale TIFF writer for tests (8- or 16-bit, either byte order, strips).
/** An uncompressed single-channel TIFF: `bits` 8 or 16, `le` byte order, `rowsPerStrip` rows a strip. */
export function encodeGrayTiff(width: number, height: number, pixels: ArrayLike<number>, o: { bits: 8 | 16; le?: boolean; rowsPerStrip?: number; photometric?: 0 | 1 }): Uint8Array {
  const le = o.le ?? true;
  const bpp = o.bits / 8;
  const rps = Math.min(o.rowsPerStrip ?? height, height);
  const strips = Math.ceil(height / rps);
  const entries: [number, number, number[]][] = []; // tag, type (3 SHORT, 4 LONG), values
  const image = new Uint8Array(width * height * bpp);
  const dv = new DataView(image.buffer);
  for (let i = 0; i < width * height; i++) {
    if (o.bits === 8) image[i] = pixels[i]!;
    else dv.setUint16(2 * i, pixels[i]!, le);
  }
  const ifdEntries = 9;
  const ifdSize = 2 + ifdEntries * 12 + 4;
  const offsetsAt = 8 + ifdSize;
  const countsAt = offsetsAt + 4 * strips;
  const dataAt = countsAt + 4 * strips;
  const stripOffsets = Array.from({ length: strips }, (_, s) => dataAt + s * rps * width * bpp);
  const stripCounts = Array.from({ length: strips }, (_, s) => Math.min(rps, height - s * rps) * width * bpp);
  entries.push([256, 4, [width]], [257, 4, [height]], [258, 3, [o.bits]], [259, 3, [1]], [262, 3, [o.photometric ?? 1]], [273, 4, stripOffsets], [277, 3, [1]], [278, 4, [rps]], [279, 4, stripCounts]);
  const out = new Uint8Array(dataAt + image.length);
  const w = new DataView(out.buffer);
  out.set(le ? [0x49, 0x49] : [0x4d, 0x4d], 0);
  w.setUint16(2, 42, le);
  w.setUint32(4, 8, le);
  w.setUint16(8, ifdEntries, le);
  entries.forEach(([tag, type, values], k) => {
    const at = 10 + 12 * k;
    w.setUint16(at, tag, le);
    w.setUint16(at + 2, type, le);
    w.setUint32(at + 4, values.length, le);
    if (values.length === 1) {
      if (type === 3) w.setUint16(at + 8, values[0]!, le);
      else w.setUint32(at + 8, values[0]!, le);
    } else {
      const arrAt = tag === 273 ? offsetsAt : countsAt;
      w.setUint32(at + 8, arrAt, le);
      values.forEach((v, i) => w.setUint32(arrAt + 4 * i, v, le));
    }
  });
  w.setUint32(10 + 12 * ifdEntries, 0, le);
  out.set(image, dataAt);
  return out;
}
