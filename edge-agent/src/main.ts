/**
 * A store-and-forward bridge for site equipment that can write lines but not speak MQTT:
 *   SITEGATE_URL=mqtt://gateway:1883 SITEGATE_SITE=S-HZ-001 SITEGATE_DEVICE=FT-1 SITEGATE_SECRET=… \
 *   SITEGATE_OUTBOX=./outbox.db  node --import tsx edge-agent/src/main.ts < events.jsonl
 * Each input line: {"channel": "checkin" | "telemetry", "message": {…}}. Lines are buffered
 * durably before they are sent; the process exits when stdin ends and everything is acknowledged.
 */
import readline from 'node:readline';
import { EdgeAgent } from './agent.ts';

const need = (k: string) => {
  const v = process.env[k];
  if (!v) { process.stderr.write(`edge-agent: ${k} is required\n`); process.exit(2); }
  return v;
};
const agent = new EdgeAgent({
  url: need('SITEGATE_URL'), siteId: need('SITEGATE_SITE'), deviceId: need('SITEGATE_DEVICE'), secret: need('SITEGATE_SECRET'),
  outboxFile: process.env.SITEGATE_OUTBOX ?? './outbox.db', firmware: process.env.SITEGATE_FIRMWARE ?? 'edge-agent/0.1',
});
agent.on('rejected', (r) => process.stderr.write(`rejected by the gateway: ${JSON.stringify(r)}\n`));
agent.on('warn', (e: Error) => process.stderr.write(`edge-agent: ${e.message}\n`));
agent.start();
let line = 0;
for await (const text of readline.createInterface({ input: process.stdin })) {
  line++;
  if (!text.trim()) continue;
  try {
    const { channel, message } = JSON.parse(text);
    if (channel !== 'checkin' && channel !== 'telemetry') throw new Error('channel must be checkin or telemetry');
    agent.send(channel, message);
  } catch (e) {
    process.stderr.write(`line ${line}: ${(e as Error).message}\n`);
  }
}
await agent.drained();
await agent.stop();
