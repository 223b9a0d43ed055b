/**
 * The session page's script: follows the live tail with an EventSource (which sends the
 * last id it saw when it reconnects, so nothing is lost or shown twice; when the server
 * refuses, it starts a new one from that id, and after three refusals reloads the page),
 * appends each entry's server-rendered HTML, keeps the view at the bottom when it was there, and counts
 * the running duration. No build step: this is the whole of it.
 */
export const SESSION_JS = `(() => {
  const log = document.getElementById('log');
  const head = document.getElementById('head');
  const live = document.getElementById('live');
  if (!log || !head || !live) return;
  let shown = Number(log.dataset.n || 0);
  let after = log.dataset.after || '0-0/0';
  let failures = 0;
  const atBottom = () => window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
  const connect = () => {
    const url = new URL(log.dataset.events, location.href);
    url.searchParams.set('after', after);
    const source = new EventSource(url);
    source.addEventListener('entry', (event) => {
      const data = JSON.parse(event.data);
      if (event.lastEventId) after = event.lastEventId;
      failures = 0;
      if (data.n <= shown) return;
      const stick = atBottom();
      const empty = log.querySelector('.empty');
      if (empty) empty.remove();
      log.insertAdjacentHTML('beforeend', data.html);
      shown = data.n;
      if (stick) window.scrollTo(0, document.body.scrollHeight);
    });
    source.addEventListener('head', (event) => { head.innerHTML = JSON.parse(event.data).html; });
    source.onopen = () => { live.textContent = 'following live'; live.className = 'live on'; };
    source.onerror = () => {
      live.textContent = 'reconnecting…';
      live.className = 'live off';
      if (source.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
      // Refused (the server was busy, restarting, or wants a new sign-in): try again a few
      // times from the last entry shown, then load the page anew, which asks what it needs.
      failures += 1;
      if (failures > 3) location.reload();
      else setTimeout(connect, 1000 * 2 ** failures);
    };
  };
  connect();
  const seconds = (ms) => {
    const s = Math.round(ms / 1000);
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + (s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  };
  setInterval(() => {
    for (const el of document.querySelectorAll('[data-since]')) el.textContent = seconds(Math.max(0, Date.now() - Number(el.dataset.since)));
  }, 1000);
})();
`;

/** The session page's style: readable on a phone and a wide screen, light and dark. */
export const SESSION_CSS = `:root { color-scheme: light dark; --dim: #6a737d; --line: #d0d7de; --accent: #0969da; }
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 70rem; padding: 0 1rem 4rem; }
header { position: sticky; top: 0; background: Canvas; border-bottom: 1px solid var(--line); padding: .5rem 0; z-index: 1; }
h1 { font-size: 1.1rem; margin: .2rem 0; font-family: ui-monospace, monospace; }
dl { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; margin: 0; }
dl div { display: flex; gap: .35rem; } dt { color: var(--dim); } dd { margin: 0; }
.phase { font-weight: 600; } .phase.finished { color: #1a7f37; } .phase.failed { color: #cf222e; } .phase.running, .phase.building, .phase.setting-up { color: var(--accent); }
.bar { display: flex; gap: 1rem; margin: .2rem 0 0; font-size: .85rem; color: var(--dim); }
.live.on::before { content: "● "; color: #1a7f37; }
label[for=details] { cursor: pointer; text-decoration: underline dotted; } #details:checked ~ header label[for=details] { font-weight: 600; }
.e.detail { display: none; } #details:checked ~ main .e.detail { display: flex; }
main { padding-top: .5rem; }
.e { display: flex; gap: .75rem; padding: .1rem 0; align-items: baseline; }
.e > .b { min-width: 0; flex: 1; overflow-wrap: anywhere; }
time { color: var(--dim); font: 12px ui-monospace, monospace; flex: none; }
code, pre { font: 13px/1.45 ui-monospace, monospace; white-space: pre-wrap; }
.line.stderr code { color: #bc4c00; } .step code, .build code { color: var(--dim); }
.mark { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--dim); margin-right: .3rem; }
.blocked .mark, .blocked code { color: #bc4c00; }
.run h2 { font-size: 1rem; margin: 1rem 0 .25rem; } .end h3 { font-size: 1rem; margin: .5rem 0; }
.end.finished h3 { color: #1a7f37; } .end.failed h3 { color: #cf222e; }
.md p:first-child { margin-top: 0; } .md p:last-child { margin-bottom: 0; }
.md pre { background: color-mix(in srgb, CanvasText 6%, Canvas); padding: .5rem; overflow-x: auto; }
.gap, .empty { color: var(--dim); font-style: italic; } .dim { color: var(--dim); }
details summary { cursor: pointer; color: var(--dim); }
`;
