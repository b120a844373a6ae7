import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['gateway/src/**/*.test.ts', 'schemas/**/*.test.ts', 'edge-agent/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real servers (influxd, mosquitto, gateway processes): two cores only.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
