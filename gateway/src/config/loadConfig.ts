import fs from 'node:fs';
import { Config } from '../../../schemas/src/config.ts';

export { Config };

export class ConfigError extends Error {}

/**
 * Reads the configuration from `env` and, when `SITEGATE_CONFIG` names one, a JSON file with the
 * same keys (the environment wins). Any invalid or unknown key throws a ConfigError whose message
 * is one line naming the key, so `main` can print it and stop.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let fromFile: Record<string, unknown> = {};
  const file = env.SITEGATE_CONFIG;
  if (file) {
    try {
      fromFile = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`SITEGATE_CONFIG: cannot read ${file}: ${(e as Error).message}`);
    }
  }
  const fromEnv = Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k.startsWith('SITEGATE_') && k !== 'SITEGATE_CONFIG' && v !== undefined && v !== ''),
  );
  const parsed = Config.safeParse({ ...fromFile, ...fromEnv });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.');
    const message = issue.code === 'unrecognized_keys' ? 'unknown configuration key' : issue.message;
    throw new ConfigError(`invalid configuration: ${key}: ${message}`);
  }
  return parsed.data;
}
