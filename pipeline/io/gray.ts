// RGBA 8-bit pixels to 8-bit gray, the one rule every image reader uses (PNG, TIFF, the page's
// decoded images): gray pixels (r = g = b) stay exact, colour ones become ITU-R 601 luma.

export function rgbaToGray(rgba: ArrayLike<number>, pixels: number): Uint8Array {
  const data = new Uint8Array(pixels);
  for (let i = 0, p = 0; i < pixels; i++, p += 4) {
    const r = rgba[p]!;
    const g = rgba[p + 1]!;
    const b = rgba[p + 2]!;
    data[i] = r === g && g === b ? r : Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  }
  return data;
}
