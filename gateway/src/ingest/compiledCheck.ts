/**
 * A fast yes for the common message, compiled from the zod schema itself (issue 11): zod's
 * `Reading.safeParse` costs ~4.5 µs per reading on the ledger writer (a run of checks per record
 * key and value, issue lists, a copied record), the check compiled here ~0.3 µs.
 *
 * `compileAccept(schema)` walks the schema's definition (the constants and refinement functions
 * are the schema's own, read from it; there is no second copy of any rule) and returns a predicate
 * that answers true only where zod would accept the value *and* return it unchanged, so that the
 * value itself can stand for zod's output. Everything else — any failure, anything unusual
 * (`__proto__` keys, unknown keys, a prototype other than Object's) — answers false, and the
 * caller asks zod, which gives the result and the errors it always gave. A schema with any part
 * the compiler does not know (a transform, a default, an optional field, another string format,
 * a refinement with `when`) does not compile (`null`): zod alone then, as before.
 *
 * `compiledCheck.test.ts` holds the compiled predicate to zod on random and mutated values.
 */
import type { z } from 'zod';

/** A predicate: true only if zod accepts `v` and returns it as it is. */
export type Accept = (v: unknown) => boolean;

class Unsupported extends Error {}

interface Def {
  type: string;
  checks?: { _zod: { def: CheckDef } }[];
  shape?: Record<string, Schema>;
  catchall?: Schema;
  options?: Schema[];
  keyType?: Schema;
  valueType?: Schema;
}
interface CheckDef {
  check: string;
  type?: string;
  minimum?: number;
  maximum?: number;
  value?: number;
  inclusive?: boolean;
  format?: string;
  pattern?: RegExp;
  fn?: (v: unknown) => unknown;
  when?: unknown;
  abort?: boolean;
}
interface Schema { _zod: { def: Def; optin?: string; optout?: string } }

const defOf = (s: unknown): Def => (s as Schema)._zod.def;

function checksOf(def: Def, allowed: string[]): ((v: never) => boolean)[] {
  return (def.checks ?? []).map((c) => {
    const d = c._zod.def;
    // zod gives its length checks a `when` that skips them for a value with no length: a string
    // always has one. Any other `when` makes the check conditional in ways not read here.
    const lengthWhen = (d.check === 'min_length' || d.check === 'max_length') && def.type === 'string' && (d.when as { name?: string } | undefined)?.name === '_whenHasLength';
    if (d.when !== undefined && !lengthWhen) throw new Unsupported(`check ${d.check} with when`);
    if (!allowed.includes(d.check)) throw new Unsupported(`check ${d.check} on ${def.type}`);
    switch (d.check) {
      case 'min_length': { const n = d.minimum!; return (v: string) => v.length >= n; }
      case 'max_length': { const n = d.maximum!; return (v: string) => v.length <= n; }
      case 'string_format': {
        if (d.format !== 'regex' || !(d.pattern instanceof RegExp)) throw new Unsupported(`string format ${d.format}`);
        const re = d.pattern;
        return (v: string) => { re.lastIndex = 0; return re.test(v); };
      }
      case 'number_format':
        if (d.format !== 'safeint') throw new Unsupported(`number format ${d.format}`);
        return (v: number) => Number.isSafeInteger(v);
      case 'greater_than': { const x = d.value!; return d.inclusive ? (v: number) => v >= x : (v: number) => v > x; }
      case 'less_than': { const x = d.value!; return d.inclusive ? (v: number) => v <= x : (v: number) => v < x; }
      case 'custom': {
        const fn = d.fn!;
        if (typeof fn !== 'function') throw new Unsupported('custom check without a function');
        // The schema's own refinement; a promise (async refinement) is not a yes.
        return (v: never) => { const r = fn(v); return !!r && !(r instanceof Promise); };
      }
      default:
        throw new Unsupported(`check ${d.check}`);
    }
  });
}

const all = <T>(checks: ((v: T) => boolean)[]) => (v: T) => { for (let i = 0; i < checks.length; i++) if (!checks[i]!(v)) return false; return true; };

/** Own enumerable string keys of a plain object made by JSON.parse (or a literal); anything else is not a yes. */
function isPlainData(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  return Object.getPrototypeOf(v) === Object.prototype;
}

function compile(s: unknown): Accept {
  const def = defOf(s);
  const o = (s as Schema)._zod;
  if (o.optin !== undefined || o.optout !== undefined) throw new Unsupported(`optional ${def.type}`);
  if ((def as { coerce?: boolean }).coerce) throw new Unsupported(`coerced ${def.type}`);
  switch (def.type) {
    case 'string': {
      const ok = all(checksOf(def, ['min_length', 'max_length', 'string_format', 'custom']) as ((v: string) => boolean)[]);
      return (v) => typeof v === 'string' && ok(v);
    }
    case 'number': {
      // zod's number takes finite numbers only (no NaN, no ±Infinity).
      const ok = all(checksOf(def, ['number_format', 'greater_than', 'less_than', 'custom']) as ((v: number) => boolean)[]);
      return (v) => typeof v === 'number' && Number.isFinite(v) && ok(v);
    }
    case 'union': {
      const options = def.options!.map(compile);
      if (def.checks?.length) throw new Unsupported('checks on a union');
      return (v) => { for (let i = 0; i < options.length; i++) if (options[i]!(v)) return true; return false; };
    }
    case 'record': {
      if (defOf(def.keyType).type !== 'string') throw new Unsupported(`record key ${defOf(def.keyType).type}`);
      const key = compile(def.keyType) as (k: string) => boolean;
      const value = compile(def.valueType);
      const ok = all(checksOf(def, ['custom']) as ((v: Record<string, unknown>) => boolean)[]);
      return (v) => {
        if (!isPlainData(v)) return false;
        for (const k in v) {
          // zod drops a `__proto__` key from its output: not "unchanged", so not a yes here.
          if (k === '__proto__' || !key(k) || !value(v[k])) return false;
        }
        return ok(v);
      };
    }
    case 'object': {
      // Strict objects only (an unknown key fails), every field required.
      if (defOf(def.catchall ?? { _zod: { def: { type: 'none' } } }).type !== 'never') throw new Unsupported('object that is not strict');
      if (def.checks?.length) throw new Unsupported('checks on an object');
      const names = Object.keys(def.shape!);
      const fields = names.map((n) => compile(def.shape![n]));
      return (v) => {
        if (!isPlainData(v)) return false;
        let n = 0;
        for (const k in v) {
          const i = names.indexOf(k);
          if (i < 0 || !fields[i]!(v[k])) return false;
          n++;
        }
        return n === names.length;
      };
    }
    default:
      throw new Unsupported(`schema type ${def.type}`);
  }
}

/** The schema's fast yes, or null when some part of it is beyond this compiler (zod alone then). */
export function compileAccept(schema: z.ZodType): Accept | null {
  try {
    return compile(schema);
  } catch (e) {
    if (e instanceof Unsupported) return null;
    throw e;
  }
}
