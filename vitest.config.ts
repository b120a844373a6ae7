import { configDefaults, defineConfig } from 'vitest/config';

/** Tests with a tight latency bound (`*.timing.e2e.test.ts`) run alone afterwards: vitest.timing.config.ts. */
export const TIMING_TESTS = 'test/**/*.timing.e2e.test.ts';

export default defineConfig({
  test: {
    include: ['gateway/src/**/*.test.ts', 'schemas/**/*.test.ts', 'edge-agent/src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, TIMING_TESTS],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real servers (influxd, mosquitto, gateway processes): two cores only.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
