// Bad input and faults in the page, in real Chromium (SwiftShader WebGPU), each checked for a clear
// message in the page and a page that stays usable: an image whose PNG or JPEG header declares a
// size over the limits (refused before the browser decodes it), a checkpoint of another model, a
// file that is not a checkpoint, and the GPU process dying mid-session (device lost). Nothing here
// compiles the model's kernels, so the file is quick; the long page tests are in browser.test.ts.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
// @ts-expect-error -- a plain .mjs script without types
import { buildWeb, serveWeb } from '../../web/build.mjs';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];
const OVERRIDES = ['INPUT.MIN_SIZE_TEST', '128'];

/** A PNG signature and IHDR chunk declaring width x height, and nothing after it. */
function pngHeader(width: number, height: number): number[] {
  const b = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52];
  for (const v of [width, height]) b.push((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  b.push(8, 0, 0, 0, 0, 0, 0, 0, 0); // 8-bit gray, CRC left zero: the size is refused first
  return b;
}

/** A JPEG's SOI, an APP0 segment and a baseline SOF0 declaring width x height. */
function jpegHeader(width: number, height: number): number[] {
  const app0 = [0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const sof0 = [0xff, 0xc0, 0, 11, 8, height >> 8, height & 255, width >> 8, width & 255, 1, 1, 0x11, 0];
  return [0xff, 0xd8, ...app0, ...sof0];
}

/** A valid safetensors file holding one tensor `foo` of another model. */
function otherModelCheckpoint(): Buffer {
  const header = Buffer.from(JSON.stringify({ foo: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }).padEnd(64, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, Buffer.alloc(8)]);
}

describe.skipIf(!existsSync(CHROMIUM))('the page with bad input and a lost GPU (Chromium, SwiftShader)', () => {
  let browser: Browser;
  let page: Page;
  let server: { url: string; close(): Promise<void> };
  const uncaught: string[] = [];
  const errorShown = async () => (await page.locator('#error').isVisible()) && ((await page.locator('#error').textContent()) ?? '');

  beforeAll(async () => {
    await buildWeb();
    server = await serveWeb({ port: 0 });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    page = await browser.newPage();
    page.on('pageerror', (e) => uncaught.push(e.message));
    await page.goto(`${server.url}?overrides=${OVERRIDES.join(',')}`);
    await page.evaluate(() => window.cellgpu.ready);
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const segmentError = (bytes: number[], name: string, type: string) =>
    page.evaluate(
      async ([b, n, t]) => window.cellgpu.segment(new File([new Uint8Array(b)], n, { type: t })).then(() => 'no error', (e: Error) => e.message),
      [bytes, name, type] as const,
    );

  it('refuses a PNG or JPEG whose header declares a huge image, before decoding it', async () => {
    expect(await segmentError(pngHeader(20000, 20000), 'huge.png', 'image/png')).toBe(
      'huge.png: header: image size 20000x20000 (WxH) is over the limit (32768 pixels a side, 134217728 pixels in all)',
    );
    expect(await errorShown()).toContain('huge.png: header: image size 20000x20000');
    expect(await segmentError(jpegHeader(60000, 100), 'wide.jpg', 'image/jpeg')).toMatch(/^wide\.jpg: header: image size 60000x100 \(WxH\) is over the limit/);
    expect(await errorShown()).toContain('wide.jpg');
  }, 60_000);

  it('says a checkpoint of another model, or a file that is no checkpoint, does not fit, and keeps the loaded model', async () => {
    const before = await page.locator('#model-name').textContent();
    await page.setInputFiles('#weights-file', { name: 'other.safetensors', mimeType: 'application/octet-stream', buffer: otherModelCheckpoint() });
    await page.waitForFunction(() => document.getElementById('error')!.textContent!.includes('other.safetensors'), undefined, { timeout: 60_000 });
    expect(await errorShown()).toMatch(/^other\.safetensors: other\.safetensors does not fit the model of this config: \d+ tensors missing/);
    await page.setInputFiles('#weights-file', { name: 'notes.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('not a checkpoint at all') });
    await page.waitForFunction(() => document.getElementById('error')!.textContent!.includes('notes.safetensors'), undefined, { timeout: 60_000 });
    expect(await errorShown()).toMatch(/^notes\.safetensors: /);
    expect(await page.locator('#model-name').textContent()).toBe(before);
  }, 120_000);

  it('tells the user to reload when the GPU process dies (WebGPU device lost), without hanging', async () => {
    // DevTools' Browser.crashGpuProcess kills the GPU process, which loses every WebGPU device of
    // the browser (reason 'unknown'), as a driver crash or reset would.
    const cdp = await browser.newBrowserCDPSession();
    await cdp.send('Browser.crashGpuProcess' as never);
    await page.waitForFunction(() => new Promise((r) => setTimeout(() => r(true), 500)));
    const msg = await segmentError(pngHeader(64, 64), 'after.png', 'image/png');
    expect(msg).toMatch(/WebGPU device lost.*reload the page/);
    expect(await errorShown()).toMatch(/WebGPU device lost.*reload the page/);
    // The page still answers: the hook and the buttons work (the next call fails the same way).
    expect(await page.evaluate(() => typeof window.cellgpu.adapter)).toBe('object');
  }, 120_000);

  it('threw nothing uncaught', () => {
    expect(uncaught).toEqual([]);
  });
});
