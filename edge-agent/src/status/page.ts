/**
 * The agent's local page: the same facts as `sitegate-agent status`, refreshed every 2 s from
 * /status.json. No framework and no external asset: site boxes are often offline.
 */
export function statusPage(siteId: string): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sitegate agent · ${esc(siteId)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}.bad{color:#b00}</style>
</head><body><h1>sitegate agent · ${esc(siteId)}</h1><div id="s">loading…</div>
<script>
const t = (v) => v === undefined ? '—' : new Date(v).toISOString();
const e = (s) => String(s).replace(/[&<>"]/g, (c) => '&#' + c.charCodeAt(0) + ';');
async function load() {
  try {
    const s = await (await fetch('status.json')).json();
    const q = s.queue;
    let h = '<table><tr><th>queue</th><td>' + q.depth + ' events, ' + (q.bytes / 1048576).toFixed(1) + ' / ' + (q.maxBytes / 1048576).toFixed(0) + ' MiB</td></tr>'
      + '<tr><th>oldest queued</th><td>' + t(q.oldestQueuedAt) + '</td></tr><tr><th>last publish</th><td>' + t(s.lastPublishAt) + '</td></tr>'
      + '<tr><th>drain</th><td>' + s.drain.ratePerS.toFixed(1) + ' events/s' + (s.drain.etaS ? ', empty in ~' + Math.ceil(s.drain.etaS) + ' s' : '') + '</td></tr></table>';
    h += '<h2>devices</h2><table><tr><th>device</th><th>link</th><th>queued</th><th>in flight</th><th>sent</th></tr>'
      + s.devices.map((d) => '<tr><td>' + e(d.deviceId) + '</td><td class="' + (d.connected ? '' : 'bad') + '">' + (d.connected ? 'connected' : 'disconnected') + '</td><td>' + d.queued + '</td><td>' + d.inflight + '</td><td>' + d.sent + '</td></tr>').join('') + '</table>';
    h += '<h2>sources</h2><table><tr><th>source</th><th>accepted</th><th>refused</th><th>errors</th><th>last error</th></tr>'
      + s.sources.map((x) => '<tr><td>' + e(x.name) + '</td><td>' + x.accepted + '</td><td>' + x.refused + '</td><td class="bad">' + e(Object.entries(x.errors).map(([c, n]) => c + '=' + n).join(' ')) + '</td><td>' + (x.lastError ? e(t(x.lastError.at) + ' ' + x.lastError.code + ': ' + x.lastError.message) : '') + '</td></tr>').join('') + '</table>';
    document.getElementById('s').innerHTML = h;
  } catch (err) { document.getElementById('s').innerHTML = '<p class="bad">agent not answering: ' + e(err.message) + '</p>'; }
}
load(); setInterval(load, 2000);
</script></body></html>`;
}
