import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface LoopDelay {
  /** 99th percentile and maximum of the event-loop delay over the last completed window, ms. */
  p99Ms: number;
  maxMs: number;
  /** Maximum since the gateway started, ms. */
  maxEverMs: number;
  windowS: number;
}

/**
 * Event-loop delay (perf_hooks.monitorEventLoopDelay): how long a timer waited beyond its time,
 * which is how long an MQTT PUBACK, a CONNACK or /healthz waited behind synchronous work. Figures
 * are per window (default 10 s), so a stall shows in the gauges for one window and then ages out,
 * and the maximum since start is kept beside them.
 */
export class EventLoopMonitor {
  private readonly h: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private last: LoopDelay;
  private maxEverMs = 0;

  constructor(private readonly windowMs = 10_000) {
    this.h = monitorEventLoopDelay({ resolution: 10 });
    this.h.enable();
    this.last = { p99Ms: 0, maxMs: 0, maxEverMs: 0, windowS: windowMs / 1000 };
    this.timer = setInterval(() => this.roll(), windowMs);
    this.timer.unref();
  }

  /** The last completed window, or the current one while none has completed. */
  read(): LoopDelay {
    const current = this.figures();
    return current.maxMs > this.last.maxMs ? current : this.last;
  }

  stop(): void {
    clearInterval(this.timer);
    this.h.disable();
  }

  private roll(): void {
    this.last = this.figures();
    this.h.reset();
  }

  private figures(): LoopDelay {
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
    const maxMs = this.h.count > 0 ? ms(this.h.max) : 0;
    this.maxEverMs = Math.max(this.maxEverMs, maxMs);
    return { p99Ms: this.h.count > 0 ? ms(this.h.percentile(99)) : 0, maxMs, maxEverMs: this.maxEverMs, windowS: this.windowMs / 1000 };
  }
}
