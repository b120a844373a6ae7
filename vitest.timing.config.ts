import { defineConfig } from 'vitest/config';
import { TIMING_TESTS } from './vitest.config.ts';

/**
 * Tests that bound a latency tightly (issue 16: a PUBACK within 200 ms while a check-in is
 * processed on a month of history) measure the gateway, not the other test files sharing the two
 * cores: they run one at a time, after the rest of the suite (`npm test`, `npm run test:all`).
 */
export default defineConfig({
  test: {
    include: [TIMING_TESTS],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
