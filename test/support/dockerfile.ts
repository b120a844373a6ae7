import fs from 'node:fs';
import path from 'node:path';

/**
 * Just enough of the Dockerfile language to lay out an image's file tree without a Docker
 * engine (none runs on this machine): stages, WORKDIR, ENV, COPY (with --from and --chown), RUN
 * and the exec form of CMD, with line continuations and comments. Anything else it meets is kept
 * as an instruction the caller can inspect.
 */
export interface Instruction { op: string; args: string; line: number }
export interface Stage { name?: string; base: string; instructions: Instruction[] }

export function parseDockerfile(text: string): Stage[] {
  const logical: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!buf && (/^\s*#/.test(line) || !line.trim())) return;
    if (!buf) start = i + 1;
    if (/\\\s*$/.test(line)) { buf += line.replace(/\\\s*$/, ' '); return; }
    buf += line;
    const m = /^\s*(\w+)\s+(.*)$/s.exec(buf);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse ${JSON.stringify(buf)}`);
    logical.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  });
  const stages: Stage[] = [];
  for (const ins of logical) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: FROM ${ins.args}`);
      stages.push({ base: m[1]!, ...(m[2] ? { name: m[2] } : {}), instructions: [] });
    } else {
      if (!stages.length) throw new Error(`Dockerfile line ${ins.line}: ${ins.op} before FROM`);
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return stages;
}

export interface Copy { from?: string; sources: string[]; dest: string; line: number }

/** COPY's flags and paths (the JSON array form too). */
export function parseCopy(ins: Instruction): Copy {
  let rest = ins.args;
  let from: string | undefined;
  for (let m = /^--(\w+)=(\S+)\s+/.exec(rest); m; m = /^--(\w+)=(\S+)\s+/.exec(rest)) {
    if (m[1] === 'from') from = m[2];
    rest = rest.slice(m[0].length);
  }
  const parts: string[] = rest.startsWith('[') ? JSON.parse(rest) : rest.split(/\s+/);
  if (parts.length < 2) throw new Error(`Dockerfile line ${ins.line}: COPY needs a source and a destination`);
  return { ...(from ? { from } : {}), sources: parts.slice(0, -1), dest: parts.at(-1)!, line: ins.line };
}

/** The exec form of CMD/ENTRYPOINT (the only form a signal reaches the process in). */
export function execForm(ins: Instruction): string[] {
  if (!ins.args.startsWith('[')) throw new Error(`Dockerfile line ${ins.line}: ${ins.op} in shell form: a SIGTERM would stop at /bin/sh`);
  return JSON.parse(ins.args) as string[];
}

/** ENV key=value pairs (and the legacy `ENV key value`). */
export function envOf(ins: Instruction): Record<string, string> {
  const out: Record<string, string> = {};
  if (!ins.args.includes('=')) {
    const [k, ...v] = ins.args.split(/\s+/);
    out[k!] = v.join(' ');
    return out;
  }
  for (const m of ins.args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) out[m[1]!] = m[2]!.startsWith('"') ? JSON.parse(m[2]!) : m[2]!;
  return out;
}

/** `.dockerignore` as Docker reads it: patterns relative to the context, `*`, `**`, `?`, `!` exceptions; the last match wins. */
export function dockerIgnore(contextDir: string): (relPath: string) => boolean {
  const file = path.join(contextDir, '.dockerignore');
  const rules = (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [])
    .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ''));
      const re = pattern.split('/').map((seg) => seg === '**' ? '(?:.*)' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
        .join('/').replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
      return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (relPath) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(relPath)) ignored = !r.negate;
    return ignored;
  };
}

/** Copies `src` (a file or a directory, relative to the context) to `dest`, leaving out what .dockerignore excludes. */
export function copyFromContext(contextDir: string, src: string, dest: string, ignored: (rel: string) => boolean): void {
  const walk = (rel: string, to: string) => {
    if (ignored(rel)) return;
    const from = path.join(contextDir, rel);
    const st = fs.statSync(from);
    if (st.isDirectory()) {
      fs.mkdirSync(to, { recursive: true });
      for (const e of fs.readdirSync(from)) walk(path.posix.join(rel, e), path.join(to, e));
    } else {
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(from, to);
    }
  };
  const rel = path.posix.normalize(src).replace(/\/$/, '').replace(/^\.$/, '');
  if (!fs.existsSync(path.join(contextDir, rel))) throw new Error(`COPY ${src}: not in the build context`);
  walk(rel, dest);
}
