#!/usr/bin/env node
// Runs before `npm start` and `npm test` (npm pre-hooks) and in CI: installs what a fresh clone
// lacks. Only Node built-ins here, since node_modules may not exist yet.
//  1. npm dependencies: `npm ci` when node_modules is missing or older than package-lock.json.
//  2. On Linux: a Vulkan driver for Dawn (Mesa >= 24 lavapipe) via scripts/setup-lavapipe.sh, which
//     is a no-op in milliseconds when it is already installed.
// A second run changes nothing and takes well under a second.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const t0 = Date.now();
const log = (msg) => console.error(`bootstrap: ${msg}`);

function npmDepsFresh() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  return existsSync(marker) && existsSync(lock) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs;
}

if (!npmDepsFresh()) {
  log('installing npm dependencies (npm ci)');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    log('`npm ci` failed; fix the error above and run it again');
    process.exit(r.status ?? 1);
  }
}

if (process.platform === 'linux' && !process.env.CELLGPU_SKIP_DRIVER_SETUP) {
  const hasDpkg = spawnSync('sh', ['-c', 'command -v dpkg-query'], { stdio: 'ignore' }).status === 0;
  if (hasDpkg) {
    const r = spawnSync('sh', [join(root, 'scripts', 'setup-lavapipe.sh')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = r.stdout.toString();
    if (r.status !== 0) {
      // Not fatal here: a host with a real GPU driver needs no lavapipe. If there is no adapter at
      // all, the command that needs one fails with the exact install command.
      log('could not install the lavapipe Vulkan driver (see above); continuing in case this host has another driver');
    } else if (!out.includes('nothing to do')) {
      process.stdout.write(out);
    }
  } else {
    log('not a Debian/Ubuntu host: install a Vulkan driver (Mesa >= 24 lavapipe, or your GPU vendor\'s) yourself');
  }
}

if (process.env.CELLGPU_BOOTSTRAP_VERBOSE) log(`done in ${Date.now() - t0} ms`);
