import { afterEach, describe, expect, it } from 'vitest';
import type { CommandMessage } from '../../../schemas/src/command.ts';
import { agentConfig, T0 } from '../../../test/support/agent.ts';
import { freePort, tempDir } from '../../../test/support/gateway.ts';
import { buildAgent, type Agent } from '../agent.ts';
import type { Actuator, ActuatorResult } from './actuator.ts';

/** An actuator that records what it was asked and answers as told. */
class RecordingActuator implements Actuator {
  readonly name = 'test:FOG-1';
  readonly device = { deviceId: 'FOG-1', secret: 's' };
  readonly executed: CommandMessage[] = [];
  async execute(c: CommandMessage): Promise<ActuatorResult> {
    this.executed.push(c);
    return c.action === 'on' ? { ok: true, message: 'done' } : { ok: false, message: `unknown action "${c.action}"` };
  }
  async stop(): Promise<void> {}
}

/**
 * The agent's side of contract §7 without a gateway (a closed port): a command delivered twice is
 * executed once, an expired one is refused without acting, one without a usable id is counted;
 * each answer waits in the durable queue like any event.
 */
describe('edge agent: executing commands', () => {
  let agent: Agent | undefined;
  afterEach(async () => { await agent?.stop(); agent = undefined; });

  it('executes once, answers through the queue, refuses expired and counts unusable commands', async () => {
    let now = T0;
    const dir = tempDir('sitegate-agent-cmd-');
    const act = new RecordingActuator();
    const config = agentConfig(`mqtt://127.0.0.1:${await freePort()}`, [], {}, dir);
    agent = buildAgent(config, { now: () => now, poll: false, actuators: [act] });
    const link = agent.links.get('FOG-1')!;
    const deliver = async (c: unknown) => {
      link.emit('command', Buffer.from(typeof c === 'string' ? c : JSON.stringify(c)));
      await agent!.commandsSettled();
    };
    const cmd = { commandId: 'cmd_1', action: 'on', expiresAt: new Date(T0 + 60_000).toISOString() };
    await deliver(cmd);
    await deliver(cmd); // the gateway sent it again (its PUBACK was lost)
    expect(act.executed).toHaveLength(1);
    expect(agent.outbox.byChannel()).toEqual({ 'command-results': 1 });
    const [queued] = agent.outbox.next('FOG-1', 0, 10);
    expect(JSON.parse(queued!.payload.toString())).toEqual({ commandId: 'cmd_1', ts: T0, ok: true, message: 'done' });

    await deliver({ commandId: 'cmd_2', action: 'dance', expiresAt: T0 + 60_000 });
    now = T0 + 120_000;
    await deliver({ commandId: 'cmd_3', action: 'on', expiresAt: T0 + 60_000 });
    await deliver('{"no":"id"}');
    await deliver({ commandId: 'cmd_4', action: 'on bad', expiresAt: T0 + 600_000 });
    expect(act.executed.map((c) => c.commandId)).toEqual(['cmd_1', 'cmd_2']);
    const answers = agent.outbox.next('FOG-1', 0, 10).map((r) => JSON.parse(r.payload.toString()));
    expect(answers.map((a) => [a.commandId, a.ok, a.message])).toEqual([
      ['cmd_1', true, 'done'],
      ['cmd_2', false, 'unknown action "dance"'],
      ['cmd_3', false, `expired at ${new Date(T0 + 60_000).toISOString()}: not executed`],
      ['cmd_4', false, expect.stringMatching(/^invalid command: action: /)],
    ]);
    const st = agent.status().sources.find((s) => s.name === 'actuator:test:FOG-1')!;
    expect(st.errors).toEqual({ command_failed: 2, command_invalid: 2 });
    expect(st.counts).toEqual({ repeated: 1, succeeded: 1, failed: 3 });

    // A restarted agent still knows what it executed.
    await agent.stop();
    agent = buildAgent(config, { now: () => now, poll: false, actuators: [act] });
    agent.links.get('FOG-1')!.emit('command', Buffer.from(JSON.stringify(cmd)));
    await agent.commandsSettled();
    expect(act.executed).toHaveLength(2);
    expect(agent.outbox.depth).toBe(4);
  });
});
