// Thin helpers over the REST API (docs/api.md). Every error the server
// sends is {"error": {code, message, ...}}; ApiError keeps that body.

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.detail = e;
  }
}

export async function api(path, opts = {}) {
  const res = await fetch('/api/v1' + path, opts);
  const text = await res.text();
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch { body = { error: { message: text.slice(0, 200) } }; }
  }
  // A session that ended (signed out elsewhere, token revoked, server
  // restarted) brings the sign-in form back.
  if (res.status === 401 && path !== '/session') location.reload();
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

export const enc = encodeURIComponent;

// h builds an element: h('td', {class: 'x', dataset: {testid: 'y'}}, child...).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function fmtNum(n, digits = 1) {
  if (n == null || Number.isNaN(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(digits) + 'G';
  if (a >= 1e6) return (n / 1e6).toFixed(digits) + 'M';
  if (a >= 1e4) return (n / 1e3).toFixed(digits) + 'k';
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(a < 10 ? 2 : digits);
}

// fmtCount is a count with its noun, singular for one: fmtCount(1, 'shard')
// is "1 shard", fmtCount(2, 'shard') "2 shards".
export function fmtCount(n, one, many = one + 's') {
  return `${fmtNum(n)} ${n === 1 ? one : many}`;
}

// axisClock labels the ticks of a chart's time axis (epoch seconds) in
// UTC and 24-hour form, as the UI shows times everywhere: 13:34:05, or
// 13:34 when every tick falls on a minute. (uPlot's own labels are
// 12-hour, `1:34pm`, with the date on a second line.)
export function axisClock(u, splits) {
  const whole = splits.every((s) => s == null || s % 60 === 0);
  return splits.map((s) => (s == null ? '' : new Date(s * 1000).toISOString().slice(11, whole ? 16 : 19)));
}

// spanAtLeast is a time scale's range (epoch seconds) spanning at least
// span seconds back from its last point: uPlot, given one point, makes
// its range 1000 days long (ticks read Jun, Dec, Jun), so the range is
// taken from the points themselves.
export function spanAtLeast(span) {
  return (u, min, max) => {
    const xs = u.data && u.data[0];
    if (!xs || !xs.length) return [min, max];
    const lo = xs[0], hi = xs[xs.length - 1];
    return hi - lo < span ? [hi - span, hi] : [lo, hi];
  };
}

export function fmtTime(ms) {
  if (ms == null) return '–';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '–' : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// fmtMs shows a duration in milliseconds as ms below a second, else s.
export function fmtMs(ms) {
  if (ms == null || Number.isNaN(ms)) return '–';
  if (ms < 1) return ms.toFixed(2) + ' ms';
  if (ms < 1000) return Math.round(ms) + ' ms';
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
}

// fmtBytes shows a byte count in B, KiB, MiB or GiB.
export function fmtBytes(n) {
  if (n == null || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : String(n)) + ' ' + units[i];
}

export function fmtAge(ms) {
  if (ms == null || Number.isNaN(ms)) return '–';
  const s = ms / 1000;
  if (s < 0) return '0s';
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(Math.floor(s % 60)).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
}

// Poller calls fn now and then every `every` ms (waiting for each call to
// finish) until stop(); a page owns its pollers and stops them on leave.
export function poller(fn, every) {
  let timer = null, stopped = false, busy = null;
  const tick = async () => {
    timer = null;
    busy = (async () => { try { await fn(); } catch (e) { console.warn('poll:', e.message); } })();
    await busy;
    busy = null;
    if (!stopped) timer = setTimeout(tick, every);
  };
  tick();
  return {
    // stop stops polling; it resolves once a poll under way has finished.
    stop() { stopped = true; clearTimeout(timer); timer = null; return busy || Promise.resolve(); },
    // resume polls again after a stop.
    resume() { if (!stopped) return; stopped = false; if (!busy && !timer) tick(); },
    // now polls at once (unless a poll is under way).
    now() { if (stopped || busy) return; clearTimeout(timer); tick(); },
  };
}

// fmtRate shows a per-second rate with its unit: "1.2k rec/s".
export function fmtRate(n, unit = 'rec/s') {
  if (n == null || Number.isNaN(n)) return '–';
  return `${fmtNum(n < 10 && !Number.isInteger(n) ? Math.round(n * 100) / 100 : n)} ${unit}`;
}

// fmtDuration shows seconds as 45s, 12m05s, 3h20m or 2d04h.
export function fmtDuration(s) {
  if (s == null || Number.isNaN(s)) return '–';
  if (s < 86400) return fmtAge(s * 1000);
  return Math.floor(s / 86400) + 'd' + String(Math.floor((s % 86400) / 3600)).padStart(2, '0') + 'h';
}

// timeEl shows a time (epoch ms, or a string Date.parse reads) the one way
// the UI shows times, UTC ISO, with the local time on hover.
export function timeEl(t, tag = 'span') {
  const ms = typeof t === 'number' ? t : t == null ? null : Date.parse(t);
  if (ms == null || Number.isNaN(ms)) return h(tag, null, '–');
  return h(tag, { title: new Date(ms).toString() }, fmtTime(ms));
}

// pretty is a value as indented JSON; a string holding JSON is parsed
// first, any other string is shown as it is.
export function pretty(v) {
  if (typeof v === 'string') {
    try { v = JSON.parse(v); } catch { return v; }
  }
  return v === undefined ? '' : JSON.stringify(v, null, 2);
}

// confirmBar is an inline "are you sure" bar: hidden until ask(), then a
// message and buttons; each button hides the bar and runs its action.
export function confirmBar(testid, message, buttons) {
  const text = h('span');
  const bar = h('div', { class: 'confirm', hidden: true, dataset: { testid } }, text,
    buttons.map(([label, tid, action, cls]) => h('button', { class: cls || null, dataset: { testid: tid }, onclick: () => { bar.hidden = true; if (action) action(); } }, label)),
    h('button', { dataset: { testid: 'cancel-' + testid.replace(/-confirm$/, '') }, onclick: () => { bar.hidden = true; } }, 'Cancel'));
  bar.ask = (msg) => { text.textContent = msg || message; bar.hidden = false; };
  text.textContent = message;
  return bar;
}

// jsonBody is the fetch options of a JSON request.
export function jsonBody(method, v) {
  return { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(v) };
}

// restartingText says when a failed job's restart strategy tries again
// (the job's `restarting`), '' when it does not.
export function restartingText(r) {
  if (!r) return '';
  return ` — restarting: attempt ${r.attempt} of ${r.attempts} at ${fmtTime(Date.parse(r.next_attempt_at))}`;
}
