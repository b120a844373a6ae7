import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildClock } from './clock.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface GatewayProcess {
  proc: ChildProcess;
  /** Resolves when the gateway logs that it listens; rejects if it exits first. */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  stdoutLines: string[];
}

/**
 * Runs the gateway as `npm start` does (`node --import tsx gateway/src/main.ts`): one process,
 * so a signal reaches the gateway itself (the tsx CLI would put a parent process in between,
 * and a SIGKILL to that parent would leave the gateway running). `argv` and `cwd` run another
 * command line the same way (the container image's CMD in its laid-out file tree). `clock` gives
 * the process a calendar clock the test sets (libfaketime, test/support/clock.ts); without it the
 * process keeps the machine's.
 */
export function spawnGateway(env: Record<string, string>, opts: { argv?: string[]; cwd?: string; clock?: ChildClock } = {}): GatewayProcess {
  const [cmd, ...args] = opts.argv ?? [process.execPath, '--import', 'tsx', path.join(ROOT, 'gateway/src/main.ts')];
  const proc = spawn(cmd!, args, {
    cwd: opts.cwd ?? ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, SITEGATE_LOG_LEVEL: 'info', ...opts.clock?.env(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d) => { err += d; });
  const stdoutLines: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      stdoutLines.push(line);
      if (line.includes('"sitegate listening"')) resolve();
    });
    exited.then(({ code, signal }) => reject(new Error(`gateway exited (${code ?? signal}) before listening: ${err.slice(-2000)}`)));
  });
  ready.catch(() => {});
  return { proc, ready, exited, stderr: () => err, stdoutLines };
}
