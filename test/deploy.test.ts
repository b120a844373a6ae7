import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../gateway/src/config/loadConfig.ts';
import { execForm, parseDockerfile } from './support/dockerfile.ts';

/**
 * docker compose cannot run on this machine (no Docker engine), so its parts are checked here:
 * the gateway's environment is a valid configuration, ports and volumes line up, and the Grafana
 * provisioning and dashboard query the measurements contract §4 writes.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const compose = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'));
const resolveDefaults = (v: string) => String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');

describe('docker-compose.yml', () => {
  const gw = compose.services.gateway;

  it('gives the gateway a configuration the gateway accepts, pointing at the InfluxDB service (2.x)', () => {
    const env = Object.fromEntries(Object.entries(gw.environment as Record<string, string>).map(([k, v]) => [k, resolveDefaults(v)]));
    const config = loadConfig(env);
    expect(new URL(config.SITEGATE_INFLUX_URL!).hostname).toBe('influxdb');
    const influx = compose.services.influxdb.environment;
    expect(config.SITEGATE_INFLUX_ORG).toBe(influx.DOCKER_INFLUXDB_INIT_ORG);
    expect(config.SITEGATE_INFLUX_BUCKET).toBe(influx.DOCKER_INFLUXDB_INIT_BUCKET);
    expect(resolveDefaults(env.SITEGATE_INFLUX_TOKEN!)).toBe(resolveDefaults(influx.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN));
    expect(compose.services.influxdb.image).toMatch(/^influxdb:2\.7/);
  });

  it('publishes the configured ports and keeps the data directory on a volume', () => {
    const ports = (gw.ports as string[]).map((p) => p.split(':')[1]);
    expect(ports).toEqual(expect.arrayContaining([gw.environment.SITEGATE_HTTP_PORT, gw.environment.SITEGATE_MQTT_PORT, gw.environment.SITEGATE_MQTT_WS_PORT]));
    expect(gw.volumes).toContain(`gateway-data:${gw.environment.SITEGATE_DATA_DIR}`);
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining(['gateway-data', 'influxdb-data', 'grafana-data']));
  });

  it('builds from a Dockerfile whose CMD is the entry point of npm start (test/image.e2e.test.ts starts it)', () => {
    const stages = parseDockerfile(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
    const cmd = stages.at(-1)!.instructions.filter((i) => i.op === 'CMD').at(-1)!;
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(execForm(cmd).join(' ')).toBe(pkg.scripts.start);
    expect(gw.build).toBe('.');
  });

  it('mounts Grafana provisioning that exists, with a Flux datasource for the compose InfluxDB', () => {
    const g = compose.services.grafana;
    for (const v of g.volumes as string[]) {
      const host = v.split(':')[0]!;
      if (host.startsWith('./')) expect(fs.existsSync(path.join(ROOT, host)), host).toBe(true);
    }
    const ds = parse(fs.readFileSync(path.join(ROOT, 'dashboards/grafana/provisioning/datasources/influxdb.yml'), 'utf8')).datasources[0];
    expect(ds.url).toBe('http://influxdb:8086');
    expect(ds.jsonData).toMatchObject({ version: 'Flux', organization: 'sitegate', defaultBucket: 'sitegate' });
    expect(ds.secureJsonData.token).toBe('$INFLUX_TOKEN');
    const ql = parse(fs.readFileSync(path.join(ROOT, 'dashboards/grafana/provisioning/datasources/influxdb.yml'), 'utf8')).datasources[1];
    expect(ql).toMatchObject({ uid: 'sitegate-influxql', url: 'http://influxdb:8086', jsonData: { version: 'InfluxQL', dbName: 'sitegate' } });
    expect(ql.secureJsonData.httpHeaderValue1).toBe('Token $INFLUX_TOKEN');
    expect(g.environment.INFLUX_TOKEN).toBeDefined();
  });
});
// The dashboards themselves: dashboards.test.ts (generated files, names, thresholds) and
// dashboards.influx.e2e.test.ts (every InfluxQL query against a real influxd).
