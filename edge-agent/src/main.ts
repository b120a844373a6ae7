/**
 * sitegate-agent: the edge agent a site installs.
 *   sitegate-agent run --config agent.json [--simulate [--speed 600]]
 *   sitegate-agent status [--config agent.json | --url http://127.0.0.1:8090]
 * `run` starts the sources of the config (with --simulate only its `simulator` source), queues
 * their events durably and forwards them to the gateway. `status` asks the running agent, or
 * reads the queue file itself when the agent is not running.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { AgentConfig } from '../../schemas/src/agent.ts';
import { buildAgent } from './agent.ts';
import { Outbox } from './buffer/outbox.ts';
import { renderStatus, type AgentStatus } from './status/status.ts';

const fail = (msg: string): never => { process.stderr.write(`sitegate-agent: ${msg}\n`); process.exit(2); };

function loadConfig(file: string): AgentConfig {
  let raw: unknown;
  try { raw = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (e) { return fail(`${file}: ${(e as Error).message}`); }
  const c = AgentConfig.safeParse(raw);
  if (!c.success) return fail(`${file}: ${c.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return c.data;
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { config: { type: 'string', short: 'c' }, url: { type: 'string' }, simulate: { type: 'boolean' }, speed: { type: 'string' }, json: { type: 'boolean' } },
});
const command = positionals[0] ?? 'run';

if (command === 'status') {
  const config = values.config ? loadConfig(values.config) : undefined;
  const url = values.url ?? `http://127.0.0.1:${config?.http.port ?? 8090}`;
  let status: AgentStatus;
  try {
    status = await (await fetch(`${url}/status.json`, { signal: AbortSignal.timeout(3000) })).json() as AgentStatus;
  } catch {
    if (!config) fail(`no agent answers at ${url}; give --config to read its queue file`);
    if (!fs.existsSync(config!.queue.file)) fail(`no agent answers at ${url} and there is no queue file ${config!.queue.file}`);
    const q = new Outbox(config!.queue.file, config!.queue.maxBytes);
    const oldest = q.oldestCreatedAt();
    const last = Number(q.meta('last_publish_at')) || undefined;
    status = {
      siteId: config!.gateway.siteId, at: Date.now(), running: false,
      queue: { depth: q.depth, bytes: q.usedBytes, maxBytes: q.maxBytes, byChannel: q.byChannel(), ...(oldest !== undefined ? { oldestQueuedAt: oldest } : {}) },
      ...(last ? { lastPublishAt: last } : {}), drain: { ratePerS: 0 }, devices: [], sources: [],
    };
    q.close();
  }
  process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : `${renderStatus(status)}\n`);
  process.exit(0);
}

if (command !== 'run') fail(`unknown command ${command} (run | status)`);
if (!values.config) fail('--config <file> is required');
const config = loadConfig(values.config!);
if (values.simulate) {
  const sims = config.sources.filter((s) => s.type === 'simulator');
  if (sims.length === 0) fail('--simulate needs a source of type "simulator" in the config (its devices and their secrets)');
  const speed = values.speed ? Number(values.speed) : undefined;
  if (speed !== undefined && !(speed >= 1)) fail('--speed must be a number ≥ 1');
  config.sources = sims.map((s) => (speed ? { ...s, speed } : s));
} else {
  config.sources = config.sources.filter((s) => s.type !== 'simulator');
}
const agent = buildAgent(config, { firmware: 'sitegate-agent/0.2' });
const port = await agent.listen();
process.stdout.write(`${JSON.stringify({ msg: 'sitegate-agent listening', port, site: config.gateway.siteId, sources: agent.inputs.map((i) => i.name) })}\n`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await agent.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
