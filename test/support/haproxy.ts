import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, tempDir } from './gateway.ts';

export const HAPROXY_BIN = process.env.SITEGATE_TEST_HAPROXY ?? '/usr/sbin/haproxy';

export interface Haproxy {
  /** `mqtt://127.0.0.1:<port>` */
  url: string;
  stop(): Promise<void>;
}

/**
 * Debian's HAProxy as a TCP balancer in front of MQTT listeners (region mode, contract §8): the
 * first backend takes every connection while its health check passes, the others are backups, so
 * a test knows where a client lands and sees it move when that instance goes away. Small
 * timeouts and a 100 ms check keep the move quick; ready when the frontend accepts a connection
 * (a bounded connect retry).
 */
/**
 * HAProxy (TCP) in front of `backends`: by default the first takes every connection and the others
 * are backups (a client moves only when its instance is down); `roundrobin` spreads new connections.
 */
export async function startHaproxy(backends: { port: number }[], o: { balance?: 'backup' | 'roundrobin' } = {}): Promise<Haproxy> {
  const port = await freePort();
  const dir = tempDir('sitegate-haproxy-');
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(cfg, [
    'global', '  maxconn 256',
    'defaults', '  mode tcp', '  timeout connect 500ms', '  timeout client 30s', '  timeout server 30s', '  retries 2', '  option redispatch',
    'frontend mqtt', `  bind 127.0.0.1:${port}`, '  default_backend gateways',
    'backend gateways',
    ...(o.balance === 'roundrobin' ? ['  balance roundrobin'] : []),
    ...backends.map((b, i) => `  server gw${i} 127.0.0.1:${b.port} check inter 100ms fall 1 rise 1${i > 0 && o.balance !== 'roundrobin' ? ' backup' : ''}`),
    '',
  ].join('\n'));
  const run = await runHaproxy(cfg, [port]);
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      await run.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface HaproxyProcess {
  /** SIGTERM, then waits for the process to exit. */
  stop(): Promise<void>;
  /** What HAProxy wrote on stderr so far (its log with `log stdout`, warnings, alerts). */
  output(): string;
}

/**
 * Runs HAProxy on the configuration file `cfg` as it is (`-db`: in the foreground), with `env` as
 * its environment, which the file may read as "${VAR}" (region mode's shipped deploy/region/haproxy.cfg
 * takes its addresses that way). Ready when every port in `listening` accepts a connection.
 */
export async function runHaproxy(cfg: string, listening: number[], env: Record<string, string> = {}): Promise<HaproxyProcess> {
  const proc = spawn(HAPROXY_BIN, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
  let err = '';
  proc.stdout!.on('data', (d) => { err += d; });
  proc.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  // HAProxy says nothing when it listens: try to connect, every 20 ms, for at most 5 s.
  for (const port of listening) {
    for (let attempt = 1; ; attempt++) {
      if (proc.exitCode !== null) throw new Error(`haproxy exited: ${err.slice(-1000)}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      });
      if (ok) break;
      if (attempt >= 250) { proc.kill('SIGKILL'); await exited; throw new Error(`haproxy not listening on ${port}: ${err.slice(-1000)}`); }
      await new Promise<void>((r) => setTimeout(r, 20));
    }
  }
  return {
    output: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** A row of HAProxy's stats (`/stats;csv`): a frontend, a backend or one of a backend's servers. */
export interface HaproxyStatsRow { pxname: string; svname: string; status: string; stot: number }

/** HAProxy's stats as served by a `stats uri /stats` frontend on `statsPort` (deploy/region/haproxy.cfg has one). */
export async function haproxyStats(statsPort: number): Promise<HaproxyStatsRow[]> {
  const text = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
  const [head, ...lines] = text.trim().split('\n');
  const cols = head!.replace(/^# /, '').split(',');
  return lines.map((l) => {
    const v = l.split(',');
    const at = (c: string) => v[cols.indexOf(c)]!;
    return { pxname: at('pxname'), svname: at('svname'), status: at('status'), stot: Number(at('stot')) };
  });
}

/** Sessions each server of `backend` has had so far (`stot`), by server name; `servers` picks the server rows. */
export async function sessionsPerServer(statsPort: number, backend: string, servers = /^gw\d$/): Promise<Record<string, number>> {
  return Object.fromEntries((await haproxyStats(statsPort)).filter((r) => r.pxname === backend && servers.test(r.svname)).map((r) => [r.svname, r.stot]));
}
