import { defineConfig } from 'vitest/config';

// Every test runs on lavapipe (a CPU Vulkan driver): GPU tests share one device per worker file,
// and shader compiles are slow, so timeouts are generous. Two cores: at most two workers.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
