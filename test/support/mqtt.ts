import type mqtt from 'mqtt';

/** Resolves with the next message on `topic`, parsed as JSON (an event, not a sleep). */
export function nextMessage(c: mqtt.MqttClient, topic: string): Promise<any> {
  return new Promise((resolve) => {
    const on = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      c.off('message', on);
      resolve(JSON.parse(payload.toString()));
    };
    c.on('message', on);
  });
}

/** SUBACK return codes, refused filters included (mqtt.js rejects the promise when any is 128). */
export function grantedCodes(c: mqtt.MqttClient, filters: string[], qos: 0 | 1 = 0): Promise<number[]> {
  return new Promise((resolve, reject) => {
    c.subscribe(filters, { qos }, (err, granted) => {
      const packet = (err as { packet?: { granted?: number[] } } | null)?.packet;
      if (packet?.granted) resolve(packet.granted);
      else if (err) reject(err);
      else resolve(granted!.map((x) => x.qos));
    });
  });
}
