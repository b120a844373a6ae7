import type { ChildClock } from './clock.ts';
import { ADMIN_TOKEN, freePort, httpApi, type TestGateway } from './gateway.ts';
import { spawnGateway, type GatewayProcess } from './process.ts';

/** A gateway process on one data directory and fixed ports, to be killed and started again. */
export interface RestartableGateway {
  api: TestGateway['api'];
  mqttUrl: string;
  mqttPort: number;
  /** Starts the process; resolves when it listens. */
  start(): Promise<void>;
  /** SIGKILL; resolves with the signal the process died of. */
  kill9(): Promise<NodeJS.Signals | null>;
  /** For afterAll: kills a process still running. */
  stop(): Promise<void>;
}

export async function restartableGateway(dataDir: string, opts: { env?: Record<string, string>; clock?: ChildClock } = {}): Promise<RestartableGateway> {
  const [http, mqttPort] = [await freePort(), await freePort()];
  const env = {
    SITEGATE_DATA_DIR: dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1', SITEGATE_HTTP_PORT: String(http),
    SITEGATE_MQTT_PORT: String(mqttPort), SITEGATE_MQTT_WS_PORT: '0', SITEGATE_ADMIN_TOKEN: ADMIN_TOKEN, SITEGATE_SECRET_SCRYPT_N: '1024',
    ...opts.env,
  };
  let proc: GatewayProcess | undefined;
  return {
    api: httpApi(`http://127.0.0.1:${http}`),
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    mqttPort,
    start() {
      proc = spawnGateway(env, opts.clock ? { clock: opts.clock } : {});
      return proc.ready;
    },
    async kill9() {
      proc!.proc.kill('SIGKILL');
      return (await proc!.exited).signal;
    },
    async stop() {
      proc?.proc.kill('SIGKILL');
      await proc?.exited;
    },
  };
}
