import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { EventLoopMonitor } from './eventLoop.ts';

describe('EventLoopMonitor', () => {
  it('sees a 150 ms synchronous stall in its max and keeps it as the maximum since start', async () => {
    const m = new EventLoopMonitor(60_000);
    try {
      // Let the histogram take a few ordinary samples first.
      for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 15));
      const t0 = performance.now();
      while (performance.now() - t0 < 150) { /* a synchronous scan on the event loop */ }
      await new Promise((r) => setTimeout(r, 20));
      await tick();
      const d = m.read();
      expect(d.maxMs).toBeGreaterThanOrEqual(130);
      expect(d.maxEverMs).toBeGreaterThanOrEqual(d.maxMs);
      expect(d.p99Ms).toBeGreaterThan(0);
    } finally {
      m.stop();
    }
  });
});
