import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config/loadConfig.ts';

let config;
try {
  config = loadConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`sitegate: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}

const gateway = await buildApp(config);
await gateway.listen();

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    gateway.logger.info({ signal }, 'shutting down');
    gateway.close().then(
      () => process.exit(0),
      (err) => { gateway.logger.error({ err }, 'unclean shutdown'); process.exit(1); },
    );
  });
}
