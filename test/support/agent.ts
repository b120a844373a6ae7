import path from 'node:path';
import { AgentConfig } from '../../schemas/src/agent.ts';
import { tempDir } from './gateway.ts';

export const TERMINAL_TOKEN = 'terminal-token-0123456789';
export const STATION_TOKEN = 'station-token-0123456789';
/** Fixed event times (the suite also runs 400 days ahead under faketime). */
export const T0 = Date.parse('2026-11-02T08:00:00+08:00');

/** An agent config for tests: its own queue file, fast reconnects, the given sources. */
export function agentConfig(url: string, sources: unknown[], extra: Record<string, unknown> = {}, dir = tempDir('sitegate-agent-')): AgentConfig {
  return AgentConfig.parse({
    gateway: { url, siteId: 'S1', reconnectMs: 100, window: 20 },
    queue: { file: path.join(dir, 'queue.db') },
    http: { host: '127.0.0.1', port: 0 },
    sources,
    ...extra,
  });
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
