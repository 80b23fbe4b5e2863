// Dawn's native log lines are dropped from a GPU command's stderr; everything else passes through,
// partial lines (progress bars) at once.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NativeNoiseFilter, isNativeNoise, wantsFilteredChild } from '../../../pipeline/cli/native-stderr';

const ROOT = new URL('../../../', import.meta.url).pathname;

function filtered(chunks: string[]): string {
  let out = '';
  const f = new NativeNoiseFilter((s) => (out += s));
  for (const c of chunks) f.push(c);
  f.end();
  return out;
}

describe('native stderr filter', () => {
  it('recognises Dawn and Vulkan loader lines only', () => {
    expect(isNativeNoise('Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.')).toBe(true);
    expect(isNativeNoise('Warning: vkCreateInstance: Found no drivers!')).toBe(true);
    expect(isNativeNoise('    at CheckVkSuccessImpl (/home/runner/work/node-webgpu/third_party/dawn/src/dawn/native/vulkan/VulkanError.cpp:106)')).toBe(true);
    expect(isNativeNoise('    at readLines (/work/pipeline/io/csv.ts:19:3)')).toBe(false);
    expect(isNativeNoise('cellseg: a.csv: line 2: bad')).toBe(false);
    expect(isNativeNoise('warning: 3 boxes skipped')).toBe(false);
  });

  it('drops noise lines split across chunks and passes the rest, partial lines at once', () => {
    const dawn = 'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16.\n';
    expect(filtered(['Warn', 'ing: maxDyn', dawn.slice(15), 'cellseg: done\n'])).toBe('cellseg: done\n');
    expect(filtered([dawn, '\n', 'x\n'])).toBe('x\n'); // the blank line Dawn adds after its block
    let out = '';
    const f = new NativeNoiseFilter((s) => (out += s));
    f.push('\rtrain [====      ] 4/10');
    expect(out).toBe('\rtrain [====      ] 4/10'); // a progress bar is not held back
    f.push('\rtrain [==========] 10/10\n');
    f.end();
    expect(out).toBe('\rtrain [====      ] 4/10\rtrain [==========] 10/10\n');
  });

  it('filters GPU commands unless --verbose', () => {
    expect(wantsFilteredChild(['node', 'main.ts', 'doctor'], {})).toBe(true);
    expect(wantsFilteredChild(['node', 'main.ts', 'train', '--config-file', 'x.yaml'], {})).toBe(true);
    expect(wantsFilteredChild(['node', 'main.ts', 'doctor', '--verbose'], {})).toBe(false);
    expect(wantsFilteredChild(['node', 'main.ts', 'score'], {})).toBe(false);
    expect(wantsFilteredChild(['node', 'main.ts', 'doctor'], { CELLSEG_STDERR_FILTERED: '1' })).toBe(false);
  });

  it('cellseg doctor: no Dawn warning lines on stderr (one GPU spawn)', () => {
    const r = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'pipeline/cli/main.ts'), 'doctor'], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/artificially reduced|^Warning: /m);
    // Without an adapter (lavapipe hidden): one message, no loader noise, exit 3.
    const none = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'pipeline/cli/main.ts'), 'doctor'], {
      encoding: 'utf8',
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json' },
    });
    if (r.status === 0) expect(none.status).toBe(3);
    expect(none.stderr).not.toMatch(/^Warning: |CheckVkSuccessImpl|\.cpp:\d+/m);
    expect(none.stderr).not.toMatch(/^\s+at /m);
  });
});
