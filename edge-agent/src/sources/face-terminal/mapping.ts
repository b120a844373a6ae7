import { TerminalEvent, TerminalMapping, type FaceTerminalSource } from '../../../../schemas/src/agent.ts';
import type { z } from 'zod';
import { at } from '../push.ts';

/**
 * Vendor presets. `sitegate`: the agent's own shape (schemas/json/terminal-event.schema.json).
 * `hikvision-acs`: the field names of a Hikvision ISAPI access-control event (`AcsEvent`
 * notification, JSON form) with the photo as base64 in `picture`; the multipart form with a
 * separate picture part is not supported. `serialNo` is the terminal's own record counter, so a
 * retry of the same record keeps its id.
 */
export const PRESETS: Record<'sitegate' | 'hikvision-acs', z.input<typeof TerminalMapping>> = {
  sitegate: { id: 'id', workerId: 'workerId', ts: 'ts', direction: 'direction', method: 'method', photo: 'photo', score: 'score' },
  'hikvision-acs': {
    id: 'AccessControllerEvent.serialNo', workerId: 'AccessControllerEvent.employeeNoString', ts: 'dateTime',
    direction: 'AccessControllerEvent.attendanceStatus', method: 'AccessControllerEvent.currentVerifyMode', photo: 'picture',
    score: 'AccessControllerEvent.similarity', scoreScale: 100,
    directionValues: { checkIn: 'in', checkOut: 'out', breakIn: 'in', breakOut: 'out', overtimeIn: 'in', overtimeOut: 'out' },
    methodValues: { face: 'face', card: 'card', cardOrFace: 'face', faceOrFpOrCardOrPw: 'face', fingerPrint: 'fingerprint', cardAndFp: 'fingerprint' },
  },
};

export type Mapper = (raw: unknown) => ReturnType<typeof TerminalEvent.safeParse>;

/** Turns a vendor's event into the agent's TerminalEvent (validated); ids become strings. */
export function mapperFor(cfg: Pick<z.infer<typeof FaceTerminalSource>, 'vendor' | 'mapping'>): Mapper {
  const m = TerminalMapping.parse(cfg.mapping ?? PRESETS[cfg.vendor]);
  return (raw) => {
    const pick = (path?: string) => (path ? at(raw, path) : undefined);
    const id = pick(m.id);
    const direction = pick(m.direction);
    const method = pick(m.method);
    const score = pick(m.score);
    const candidate: Record<string, unknown> = {
      id: typeof id === 'number' ? String(id) : id,
      workerId: pick(m.workerId),
      ts: pick(m.ts),
      direction: typeof direction === 'string' ? (m.directionValues[direction] ?? direction) : direction,
      method: typeof method === 'string' ? (m.methodValues[method] ?? method) : (method ?? m.defaultMethod),
    };
    if (typeof score === 'number') candidate.score = score / m.scoreScale;
    else if (score !== undefined) candidate.score = score;
    const photo = pick(m.photo);
    if (photo !== undefined && photo !== null && photo !== '') candidate.photo = photo;
    return TerminalEvent.safeParse(candidate);
  };
}
