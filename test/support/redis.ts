import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { freePort } from './gateway.ts';

/**
 * A real Redis (Debian's `redis-server`) on a free loopback port, in memory only (`--save ''
 * --appendonly no`), for region mode's joined brokers (contract §8). Ready when the server says
 * so on its log ("Ready to accept connections"), within a bounded time; a port taken between
 * picking and binding makes it exit, and it is tried again on another port.
 */

export const REDIS_SERVER_BIN = process.env.SITEGATE_TEST_REDIS_SERVER ?? '/usr/bin/redis-server';

const READY_WITHIN_MS = 10_000;

export interface RedisServer {
  /** `redis://127.0.0.1:<port>`, or `redis://:<password>@127.0.0.1:<port>` */
  url: string;
  port: number;
  /** SIGTERM, then waits for the process to exit. */
  stop(): Promise<void>;
}

export function redisAvailable(): { ok: true } | { ok: false; reason: string } {
  try {
    fs.accessSync(REDIS_SERVER_BIN, fs.constants.X_OK);
    return { ok: true };
  } catch {
    return {
      ok: false,
      reason: `redis-server is required by this suite (real Redis, style.md §10) but ${REDIS_SERVER_BIN} is missing or not executable. ` +
        'Install it (Debian/Ubuntu: `apt-get install redis-server`, or `npm run test:all`) or point SITEGATE_TEST_REDIS_SERVER at one. ' +
        'The suite does not skip: a missing server must not look like a passing test.',
    };
  }
}

/** `password`: the server requires it (`--requirepass`, as docker-compose.region.yml runs Redis); `url` then carries it. */
export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  const available = redisAvailable();
  if (!available.ok) throw new Error(available.reason);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const auth = opts.password ? ['--requirepass', opts.password] : [];
    const proc = spawn(REDIS_SERVER_BIN, ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1', ...auth], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    try {
      await ready(proc, exited);
    } catch (e) {
      proc.kill('SIGKILL');
      await exited;
      if (attempt >= 3) throw e;
      continue;
    }
    return {
      url: `redis://${opts.password ? `:${encodeURIComponent(opts.password)}@` : ''}127.0.0.1:${port}`,
      port,
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
        await exited;
      },
    };
  }
}

function ready(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  let log = '';
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server not ready within ${READY_WITHIN_MS} ms: ${log.slice(-1000)}`)), READY_WITHIN_MS);
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      log += line + '\n';
      if (line.includes('Ready to accept connections')) { clearTimeout(timer); resolve(); }
    });
    proc.stderr!.on('data', (d) => { log += d; });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`redis-server exited before it was ready: ${log.slice(-1000)}`)); });
  });
}
