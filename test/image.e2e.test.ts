import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFromContext, dockerIgnore, envOf, execForm, parseCopy, parseDockerfile, type Stage } from './support/dockerfile.ts';
import { freePort, tempDir } from './support/gateway.ts';
import { spawnGateway, type GatewayProcess } from './support/process.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COMPILERS = /\b(g\+\+|gcc|clang|make|build-essential|python3)\b/;

/**
 * The container image, without a Docker engine (none runs here): its file tree is laid out from
 * the Dockerfile's own instructions — each stage in a directory of its own standing for `/`,
 * COPY from the build context (minus .dockerignore) or from an earlier stage, the build stage's
 * `npm` RUN lines run for real — and the image's CMD is started in it as the container would run
 * it, with a fresh data directory. A file the gateway needs at run time that the Dockerfile does
 * not copy (dashboards/, once) makes the start fail here as it failed in compose.
 *
 * Stand-ins, said plainly: the node binary is this machine's Node 20 (the image's base is
 * node:20); the build stage's `apt-get` lines (the compiler) are not run, and its `npm` lines run
 * with `--ignore-scripts`, after which the native addons are taken from this checkout's own
 * `npm ci` (same Node ABI, same lockfile): compiling better-sqlite3 again would cost ~80 s.
 */
describe('the container image (Dockerfile laid out and started)', () => {
  const stages = parseDockerfile(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const final = stages.at(-1)!;
  const ignored = dockerIgnore(ROOT);
  const work = tempDir('sitegate-image-');
  const roots = new Map<Stage, string>();
  let gw: GatewayProcess | undefined;
  let httpPort: number;

  const workdirOf = (stage: Stage, upTo = stage.instructions.length) =>
    stage.instructions.slice(0, upTo).filter((i) => i.op === 'WORKDIR').reduce((wd, i) => path.posix.resolve(wd, i.args), '/');

  /** Lays out one stage: its COPY lines and `npm` RUN lines, in order. */
  function build(stage: Stage): string {
    const root = path.join(work, `stage-${roots.size}`);
    roots.set(stage, root);
    stage.instructions.forEach((ins, i) => {
      const wd = path.join(root, workdirOf(stage, i + 1));
      if (ins.op === 'WORKDIR') fs.mkdirSync(wd, { recursive: true });
      if (ins.op === 'COPY') {
        const c = parseCopy(ins);
        const dest = path.join(root, path.posix.resolve(workdirOf(stage, i + 1), c.dest));
        const intoDir = c.dest.endsWith('/') || c.sources.length > 1;
        if (c.from) {
          const from = stages.find((s) => s.name === c.from);
          if (!from || from === stage) throw new Error(`Dockerfile line ${c.line}: --from=${c.from} names no earlier stage`);
          const fromRoot = roots.get(from) ?? build(from);
          for (const src of c.sources) fs.cpSync(path.join(fromRoot, src), intoDir ? path.join(dest, path.basename(src)) : dest, { recursive: true });
        } else {
          for (const src of c.sources) {
            const isDir = fs.statSync(path.join(ROOT, src)).isDirectory();
            copyFromContext(ROOT, src, isDir || !intoDir ? dest : path.join(dest, path.basename(src)), ignored);
          }
        }
      }
      if (ins.op === 'RUN') {
        for (const cmd of ins.args.split(/\s*&&\s*/).filter((c) => /^npm\s/.test(c))) {
          execFileSync('sh', ['-c', `${cmd} --ignore-scripts --prefer-offline`], { cwd: wd, stdio: 'pipe', env: { ...process.env, npm_config_update_notifier: 'false' } });
          // The native addons the skipped install scripts would have compiled, from this checkout's own install.
          const modules = path.join(wd, 'node_modules');
          for (const pkg of fs.existsSync(modules) ? fs.readdirSync(modules) : []) {
            const built = path.join(ROOT, 'node_modules', pkg, 'build');
            if (fs.existsSync(path.join(modules, pkg, 'binding.gyp')) && fs.existsSync(built)) fs.cpSync(built, path.join(modules, pkg, 'build'), { recursive: true });
          }
        }
      }
    });
    return root;
  }

  beforeAll(async () => {
    build(final);
    httpPort = await freePort();
    const env = final.instructions.filter((i) => i.op === 'ENV').reduce((e, i) => ({ ...e, ...envOf(i) }), {} as Record<string, string>);
    const [cmd, ...args] = execForm(final.instructions.filter((i) => i.op === 'CMD').at(-1)!);
    expect(cmd).toBe('node');
    // As `docker run -e …` would: a fresh data volume and free loopback ports; everything else from the image.
    gw = spawnGateway({
      ...env, SITEGATE_DATA_DIR: tempDir('sitegate-image-data-'), SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1',
      SITEGATE_HTTP_PORT: String(httpPort), SITEGATE_MQTT_PORT: String(await freePort()), SITEGATE_MQTT_WS_PORT: String(await freePort()),
    }, { argv: [process.execPath, ...args], cwd: path.join(roots.get(final)!, workdirOf(final)) });
    await gw.ready;
  }, 180_000);

  afterAll(async () => {
    if (gw && gw.proc.exitCode === null) { gw.proc.kill('SIGKILL'); await gw.exited; }
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('starts from its CMD and answers /healthz and the live page', async () => {
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const live = await fetch(`http://127.0.0.1:${httpPort}/live`);
    expect(live.status).toBe(200);
    expect(live.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await live.text()).toMatch(/<html/i);
  });

  it('stops cleanly on SIGTERM (the exec-form CMD gets the signal itself)', async () => {
    gw!.proc.kill('SIGTERM');
    expect(await gw!.exited).toEqual({ code: 0, signal: null });
  });

  it('carries no compiler and no development files in the runtime stage', () => {
    expect(stages.length).toBeGreaterThan(1); // multi-stage: the compiler stays in the build stage
    for (const run of final.instructions.filter((i) => i.op === 'RUN')) expect(run.args, `line ${run.line}`).not.toMatch(COMPILERS);
    expect(final.instructions.filter((i) => i.op === 'USER').at(-1)?.args).not.toMatch(/^(root|0)$/);
    const app = path.join(roots.get(final)!, workdirOf(final));
    const files = fs.readdirSync(app, { recursive: true }) as string[];
    expect(files.filter((f) => f.endsWith('.test.ts') && !f.includes('node_modules'))).toEqual([]);
    for (const devOnly of ['vitest', 'typescript', 'playwright-core']) expect(fs.existsSync(path.join(app, 'node_modules', devOnly)), devOnly).toBe(false);
    expect(fs.existsSync(path.join(app, 'node_modules', 'better-sqlite3'))).toBe(true);
  });
});
