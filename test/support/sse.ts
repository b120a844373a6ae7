/** One Server-Sent Event as the live feed sends it (contract §2, §6). */
export interface SseEvent { event: string; data: any; id?: string }

/** Reads Server-Sent Events from a fetch body until `done(events)` says enough (or the stream ends), then lets the stream go. */
export async function readEventsUntil(res: Response, done: (events: SseEvent[]) => boolean): Promise<SseEvent[]> {
  const reader = res.body!.getReader();
  const out: SseEvent[] = [];
  let buf = '';
  while (!done(out)) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    buf += new TextDecoder().decode(value);
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.+)$/m.exec(frame)?.[1];
      const data = /^data: (.+)$/m.exec(frame)?.[1];
      const id = /^id: (.+)$/m.exec(frame)?.[1];
      if (event && data) out.push({ event, data: JSON.parse(data), ...(id ? { id } : {}) });
    }
  }
  await reader.cancel();
  return out;
}

/** Reads Server-Sent Events from a fetch body until `want` events arrived. */
export function readEvents(res: Response, want: number): Promise<SseEvent[]> {
  return readEventsUntil(res, (events) => events.length >= want);
}
