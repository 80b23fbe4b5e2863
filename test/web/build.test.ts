// web/build.mjs without a browser: the page bundles without Node, and the build fails, naming the
// importer, when a Node built-in would be left in the bundle.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs script without types
import { buildWeb, ROOT } from '../../web/build.mjs';

describe('web build', () => {
  const out = mkdtempSync(join(tmpdir(), 'cellgpu-web-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('bundles web/main.ts for the browser without Node built-ins', async () => {
    const r = await buildWeb({ outdir: out });
    expect(r.bytes).toBeGreaterThan(100_000);
    expect(r.bytes).toBeLessThan(2_000_000);
  }, 60_000);

  it('fails when a Node built-in would stay in the bundle, naming the file that imports it', async () => {
    const entry = join(ROOT, 'web', `.node-leak-${process.pid}.ts`);
    writeFileSync(entry, "import { loadConfig } from '../models/config/config';\n(globalThis as any).f = loadConfig;\n");
    try {
      await expect(buildWeb({ outdir: out, entry })).rejects.toThrow(/Node built-ins:[\s\S]*node:fs \(imported by [^)]*models\/config\/node-yaml\.ts/);
    } finally {
      rmSync(entry, { force: true });
    }
  }, 60_000);
});
