/**
 * The ops status page served at GET /status: one self-contained HTML document (inline CSS and JS, no
 * framework, nothing fetched but status.json) that polls the status report and renders expert freshness,
 * training, partitions and events.
 *
 * Safety: the script builds the DOM with createElement/textContent only, so nothing from the report is
 * ever parsed as HTML. The CSP allows exactly this script and style (by hash) and fetches to the same
 * origin. Settings travel as data- attributes on <body> so the script, and with it its hash, is constant.
 */
import { createHash } from 'node:crypto';

const STYLE = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --panel: #ffffff; --text: #1d232b; --muted: #5b6573; --border: #dde1e6; --head: #eef1f4;
  --accent: #2457c5; --ok: #1f7a3d; --ok-bg: #e2f4e8; --warn: #8a5a00; --warn-bg: #fff1cc; --bad: #a3212b;
  --bad-bg: #fde4e4; --info: #1f4f99; --info-bg: #e1ebfb; --idle: #4b5563; --idle-bg: #eceef1;
  --run: #5b2ea6; --run-bg: #ece4fb;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #14171c; --panel: #1c2027; --text: #e3e7ec; --muted: #9aa4b1; --border: #2e343d; --head: #232831;
    --accent: #7ea6ff; --ok: #7bd79a; --ok-bg: #173524; --warn: #f3c766; --warn-bg: #3a2f12; --bad: #ff9a9f;
    --bad-bg: #451d21; --info: #9cc0ff; --info-bg: #1b2c48; --idle: #b6bec9; --idle-bg: #2a2f37;
    --run: #c9b0ff; --run-bg: #2f2446;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.5rem 1rem; padding: 0.9rem 1.5rem;
  background: var(--panel); border-bottom: 1px solid var(--border); }
header.top h1 { font-size: 1.2rem; margin: 0; }
header.top .sub { color: var(--muted); }
header.top .right { margin-left: auto; display: flex; gap: 0.75rem; align-items: baseline; color: var(--muted); }
main { padding: 1rem 1.5rem 2rem; max-width: 1500px; margin: 0 auto; }
main[data-stale="true"] .panel, main[data-stale="true"] .stats { opacity: 0.55; }
.banner { border-radius: 6px; padding: 0.6rem 0.9rem; margin: 0 0 1rem; border: 1px solid; }
.banner.error { background: var(--bad-bg); color: var(--bad); border-color: var(--bad); }
.banner.warning { background: var(--warn-bg); color: var(--warn); border-color: var(--warn); }
.stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 0.75rem; margin: 0 0 1rem; }
.stat { background: var(--panel); border: 1px solid var(--border); border-radius: 6px; padding: 0.6rem 0.8rem; }
.stat dt { color: var(--muted); font-size: 0.78rem; text-transform: uppercase; letter-spacing: 0.04em; }
.stat dd { margin: 0.15rem 0 0; font-size: 1.35rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.stat .note { display: block; font-size: 0.78rem; font-weight: 400; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 560px), 1fr)); gap: 1rem; margin: 0 0 1rem; align-items: start; }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 6px; padding: 0.8rem 1rem;
  margin: 0 0 1rem; overflow-x: auto; }
.grid .panel { margin: 0; }
.panel h2 { font-size: 1rem; margin: 0 0 0.6rem; }
.panel h2 .count { color: var(--muted); font-weight: 400; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid var(--border); white-space: nowrap; }
th { background: var(--head); font-weight: 600; font-size: 0.8rem; color: var(--muted); }
td.num, th.num { text-align: right; }
td.wrap { white-space: normal; overflow-wrap: anywhere; }
tbody tr:hover { background: var(--head); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
.empty { color: var(--muted); font-style: italic; margin: 0.3rem 0; }
.muted { color: var(--muted); }
.badge { display: inline-block; min-width: 5.2em; text-align: center; padding: 0.05rem 0.5rem; border-radius: 999px;
  font-size: 0.78rem; font-weight: 600; border: 1px solid currentColor; }
.b-fresh, .b-done, .b-live, .b-snapshot { color: var(--ok); background: var(--ok-bg); }
.b-stale, .b-queued, .b-split, .b-epoch { color: var(--warn); background: var(--warn-bg); }
.b-training, .b-running, .b-retrain { color: var(--run); background: var(--run-bg); }
.b-failed, .b-failure, .b-offline { color: var(--bad); background: var(--bad-bg); }
.b-untrained { color: var(--idle); background: var(--idle-bg); }
.b-spawn, .b-bootstrap { color: var(--info); background: var(--info-bg); }
.lag-high { color: var(--bad); font-weight: 600; }
.lag-some { color: var(--warn); }
.progress { display: flex; align-items: center; gap: 0.5rem; min-width: 220px; }
progress { width: 140px; height: 0.7rem; accent-color: var(--accent); }
.share { display: inline-block; vertical-align: middle; width: 48px; height: 6px; background: var(--head);
  border-radius: 3px; overflow: hidden; margin-left: 0.4rem; }
.share > span { display: block; height: 100%; background: var(--accent); }
footer { color: var(--muted); font-size: 0.8rem; padding: 0 1.5rem 1.5rem; max-width: 1500px; margin: 0 auto; }
`;

// Plain ES2020 for the browser. No backticks or dollar-brace in here: this is a TypeScript template string.
const SCRIPT = String.raw`
'use strict';
(() => {
  const body = document.body;
  const POLL_MS = Number(body.dataset.pollMs) || 2000;
  const STATUS_URL = body.dataset.statusUrl || 'status.json';
  // A hung request must not stop the polling loop.
  const TIMEOUT_MS = Math.max(2 * POLL_MS, 5000);
  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat(undefined);
  const nf2 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  const nf4 = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 });

  let last = null; // { report, receivedAt, skewMs }
  let timer = 0;
  let inFlight = false;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else node.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const dash = () => el('span', { class: 'muted', 'aria-label': 'none' }, '\u2014');
  const int = (n) => (typeof n === 'number' && Number.isFinite(n) ? nf.format(n) : dash());
  const dec = (n, f) => (typeof n === 'number' && Number.isFinite(n) ? (f || nf2).format(n) : dash());

  function age(seconds) {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '';
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + ' s';
    const m = Math.round(s / 60);
    if (m < 90) return m + ' min';
    const h = Math.floor(s / 3600);
    if (h < 36) return h + ' h ' + Math.round((s - h * 3600) / 60) + ' min';
    const d = Math.floor(s / 86400);
    return d + ' d ' + Math.round((s - d * 86400) / 3600) + ' h';
  }
  // Ages are taken against the server clock (generatedAt), corrected for the time since the response.
  function secondsSince(iso) {
    const t = Date.parse(iso);
    if (!last || Number.isNaN(t)) return null;
    return (Date.now() - last.skewMs - t) / 1000;
  }
  function when(iso) {
    if (!iso) return dash();
    const s = secondsSince(iso);
    return el('time', { datetime: iso, title: iso }, s === null ? iso : age(s) + ' ago');
  }
  const badge = (text, testid) => el('span', { class: 'badge b-' + text, 'data-testid': testid }, text);

  function table(testid, caption, columns, rows, emptyText) {
    if (rows.length === 0) return el('p', { class: 'empty', 'data-testid': testid + '-empty' }, emptyText);
    const head = el('tr', {}, columns.map((c) => el('th', { scope: 'col', class: c.num ? 'num' : '' }, c.label)));
    return el('table', { 'data-testid': testid }, el('caption', { class: 'visually-hidden' }, caption), el('thead', {}, head), el('tbody', {}, rows));
  }
  function cells(values, columns) {
    return values.map((v, i) => el('td', { class: (columns[i].num ? 'num' : '') + (columns[i].wrap ? ' wrap' : '') }, v));
  }
  function panel(id, title, count, content) {
    const h = el('h2', { id: id + '-title' }, title, count === undefined ? null : el('span', { class: 'count' }, ' (' + nf.format(count) + ')'));
    return el('section', { class: 'panel', 'aria-labelledby': id + '-title', 'data-testid': id }, h, content);
  }

  function stat(label, value, note, testid) {
    return el('div', { class: 'stat' }, el('dt', {}, label), el('dd', { 'data-testid': testid }, value, note ? el('span', { class: 'note' }, note) : null));
  }
  function renderStats(r) {
    const c = r.centroids;
    const reservoir = r.reservoir ? nf.format(r.reservoir.seen) + ' / ' + nf.format(r.reservoir.capacity) + ' sampled' : null;
    return el('dl', { class: 'stats' }, [
      stat('Routing epoch', c ? int(c.epoch) : 'none', c ? nf.format(c.fine) + ' fine \u00b7 ' + c.dim + '-d' : 'not bootstrapped: ' + (reservoir || ''), 'stat-epoch'),
      stat('Experts', int(r.experts.length), c ? nf.format(c.experts) + ' in epoch' : null, 'stat-experts'),
      stat('Records', int(r.totalRecords), r.unrouted > 0 ? nf.format(r.unrouted) + ' unrouted' : null, 'stat-records'),
      stat('Dead letters', int(r.deadLettered), r.deadLettered === null ? 'Kafka unavailable' : null, 'stat-dead-letters'),
      stat('Snapshot', r.snapshot ? 'v' + r.snapshot.version : 'none', r.snapshot ? 'epoch ' + r.snapshot.epoch + ', ' + age(secondsSince(r.snapshot.createdAt)) + ' ago' : null, 'stat-snapshot'),
      stat('Backend', r.backend ? r.backend.name : dash(), r.backend && r.backend.adapter ? r.backend.adapter : null, 'stat-backend'),
      stat('Embedder', r.embedder.kind + (r.embedder.model ? ' ' + r.embedder.model : ''), (r.embedder.dim !== null ? r.embedder.dim + '-d ' : '') + (r.embedder.fingerprint || '') + (r.embedder.mismatch ? ' — epoch built with another embedder' : ''), 'stat-embedder'),
    ]);
  }

  const EXPERT_COLUMNS = [
    { label: 'Expert' }, { label: 'State' }, { label: 'Records', num: true }, { label: 'Fine clusters', num: true },
    { label: 'Version', num: true }, { label: 'Last trained' }, { label: 'Pending', num: true }, { label: 'Oldest pending', num: true },
  ];
  function renderExperts(r) {
    const total = Math.max(1, r.totalRecords);
    const rows = r.experts.map((e) => {
      const share = el('span', { class: 'share', 'aria-hidden': 'true' }, el('span'));
      share.firstChild.style.setProperty('width', Math.min(100, (100 * e.records) / total).toFixed(1) + '%');
      const oldest = typeof e.oldestPendingAgeSeconds === 'number' ? age(e.oldestPendingAgeSeconds) : dash();
      return el('tr', { 'data-testid': 'expert-row', 'data-expert-id': e.id, 'data-state': e.state },
        cells([
          el('span', { 'data-testid': 'expert-id' }, '#' + e.id),
          badge(e.state, 'expert-state'),
          el('span', {}, el('span', { 'data-testid': 'expert-records' }, int(e.records)), share),
          int(e.fineClusters),
          e.version === null ? dash() : 'v' + e.version,
          when(e.lastTrainedAt),
          el('span', { 'data-testid': 'expert-pending' }, int(e.pending)),
          oldest,
        ], EXPERT_COLUMNS));
    });
    const empty = r.centroids ? 'No experts in this epoch yet.' : 'No experts yet: the centroids bootstrap once the reservoir sample is full.';
    return panel('experts', 'Experts', r.experts.length, table('experts-table', 'Experts and their freshness', EXPERT_COLUMNS, rows, empty));
  }

  const QUEUE_COLUMNS = [{ label: '#', num: true }, { label: 'Job' }, { label: 'Reason', wrap: true }, { label: 'Priority', num: true }];
  function renderQueue(r) {
    const rows = r.trainingQueue.map((q, i) => el('tr', { 'data-testid': 'queue-row', 'data-job-name': q.name }, cells([i + 1, q.name, q.reason, dec(q.priority, nf4)], QUEUE_COLUMNS)));
    return panel('queue', 'Training queue', r.trainingQueue.length, table('queue-table', 'Jobs waiting for the trainer', QUEUE_COLUMNS, rows, 'Nothing queued.'));
  }

  const JOB_COLUMNS = [{ label: 'Job' }, { label: 'State' }, { label: 'Progress' }, { label: 'Loss', num: true }, { label: 'Samples/s', num: true }, { label: 'Backend' }, { label: 'Updated' }];
  function renderJobs(r) {
    const order = { running: 0, failed: 1, done: 2 };
    const jobs = r.jobs.slice().sort((a, b) => ((order[a.state] ?? 3) - (order[b.state] ?? 3)) || (Date.parse(b.updatedAt) - Date.parse(a.updatedAt)));
    const rows = [];
    for (const j of jobs) {
      const pct = j.totalSteps > 0 ? Math.min(100, (100 * j.step) / j.totalSteps) : 0;
      const label = nf.format(j.step) + ' / ' + nf.format(j.totalSteps) + ' (' + pct.toFixed(0) + '%)';
      const progress = el('div', { class: 'progress' },
        el('progress', { max: Math.max(1, j.totalSteps), value: j.step, 'aria-label': 'Progress of ' + j.name + ': ' + label, 'data-testid': 'job-progress' }),
        el('span', { 'data-testid': 'job-steps' }, label));
      const backend = j.backend + (j.adapter ? ' (' + j.adapter + ')' : '');
      rows.push(el('tr', { 'data-testid': 'job-row', 'data-job-name': j.name, 'data-state': j.state },
        cells([j.name, badge(j.state, 'job-state'), progress, dec(j.loss, nf4), dec(j.samplesPerSecond, nf), backend, when(j.updatedAt)], JOB_COLUMNS)));
      if (j.error) rows.push(el('tr', { 'data-testid': 'job-error' }, el('td', { colspan: JOB_COLUMNS.length, class: 'wrap' }, el('span', { class: 'badge b-failed' }, 'error'), ' ', j.error)));
    }
    return panel('jobs', 'Training jobs', r.jobs.length, table('jobs-table', 'Running and recent training jobs', JOB_COLUMNS, rows, 'No training jobs yet.'));
  }

  const MODEL_COLUMNS = [{ label: 'Model' }, { label: 'Version', num: true }, { label: 'Trained' }, { label: 'Steps', num: true }, { label: 'Loss', num: true }, { label: 'Records', num: true }, { label: 'Samples/s', num: true }, { label: 'Backend' }];
  function renderModels(r) {
    const rows = r.models.map((m) => el('tr', { 'data-testid': 'model-row', 'data-model-name': m.name },
      cells([m.name, 'v' + m.version, when(m.trainedAt), int(m.steps), dec(m.loss, nf4), int(m.records), dec(m.samplesPerSecond, nf), m.backend], MODEL_COLUMNS)));
    return panel('models', 'Published models', r.models.length, table('models-table', 'Newest version of each model', MODEL_COLUMNS, rows, 'No model published yet.'));
  }

  const PARTITION_COLUMNS = [{ label: 'Stage' }, { label: 'Topic' }, { label: 'Partition', num: true }, { label: 'Position', num: true }, { label: 'End', num: true }, { label: 'Lag', num: true }];
  function renderPartitions(r) {
    const rows = r.partitions.map((p) => {
      const lagClass = p.lag === null ? '' : p.lag > 10000 ? 'lag-high' : p.lag > 0 ? 'lag-some' : '';
      return el('tr', { 'data-testid': 'partition-row', 'data-stage': p.stage, 'data-topic': p.topic, 'data-partition': p.partition },
        cells([p.stage, p.topic, p.partition, int(p.position), int(p.end), el('span', { class: lagClass, 'data-testid': 'partition-lag' }, int(p.lag))], PARTITION_COLUMNS));
    });
    const totalLag = r.partitions.reduce((s, p) => s + (p.lag || 0), 0);
    const title = r.partitions.length ? 'Partitions \u00b7 total lag ' + nf.format(totalLag) : 'Partitions';
    const empty = r.kafkaError ? 'Kafka unavailable: no offsets.' : 'No partitions reported.';
    return panel('partitions', title, undefined, table('partitions-table', 'Consumer positions and lag per partition', PARTITION_COLUMNS, rows, empty));
  }

  const EVENT_COLUMNS = [{ label: 'When' }, { label: 'Kind' }, { label: 'Message', wrap: true }];
  function renderEvents(r) {
    const events = r.events.slice().sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, 100);
    const rows = events.map((e) => el('tr', { 'data-testid': 'event-row', 'data-kind': e.kind }, cells([when(e.at), badge(e.kind, 'event-kind'), el('span', { 'data-testid': 'event-message' }, e.message)], EVENT_COLUMNS)));
    return panel('events', 'Recent events', r.events.length, table('events-table', 'Controller events, newest first', EVENT_COLUMNS, rows, 'No events yet.'));
  }

  function render(r) {
    $('stats').replaceChildren(renderStats(r));
    const kafka = $('kafka-error');
    kafka.hidden = !r.kafkaError;
    kafka.textContent = r.kafkaError ? 'Kafka unreachable, showing state from LMDB only: ' + r.kafkaError : '';
    $('content').replaceChildren(
      renderExperts(r),
      renderJobs(r),
      el('div', { class: 'grid' }, renderQueue(r), renderPartitions(r)),
      renderEvents(r),
      renderModels(r),
    );
    const c = r.centroids;
    $('footer').replaceChildren(
      'Brokers: ' + (r.brokers.length ? r.brokers.join(', ') : 'none'),
      c ? ' \u00b7 epoch ' + c.epoch + ' created ' + c.createdAt + (c.balanced ? ', balanced' : '') + (c.oneStage ? ', one-stage' : ', two-stage') : '',
      r.reservoir ? ' \u00b7 reservoir ' + nf.format(r.reservoir.seen) + ' / ' + nf.format(r.reservoir.capacity) : '',
      ' \u00b7 report generated ' + r.generatedAt,
    );
  }

  function showConnection() {
    const updated = $('updated');
    const conn = $('connection');
    const stale = $('error-banner').hidden === false;
    updated.textContent = last ? 'updated ' + age((Date.now() - last.receivedAt) / 1000) + ' ago' : 'waiting for data\u2026';
    conn.className = 'badge ' + (stale ? 'b-offline' : 'b-live');
    conn.textContent = stale ? (last ? 'stale' : 'offline') : 'live';
  }

  function setError(message) {
    const banner = $('error-banner');
    const main = $('main');
    if (message === null) {
      banner.hidden = true;
      banner.textContent = '';
      main.dataset.stale = 'false';
    } else {
      banner.hidden = false;
      const since = last ? ' Showing the last good data, received ' + age((Date.now() - last.receivedAt) / 1000) + ' ago (marked stale).' : ' No data received yet.';
      banner.textContent = 'Cannot load ' + STATUS_URL + ': ' + message + '.' + since;
      main.dataset.stale = last ? 'true' : 'false';
    }
    showConnection();
  }

  async function poll() {
    clearTimeout(timer);
    if (inFlight) return;
    inFlight = true;
    const abort = new AbortController();
    const deadline = setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(STATUS_URL, { cache: 'no-store', signal: abort.signal, headers: { accept: 'application/json' } });
      if (!res.ok) {
        let detail = '';
        try {
          const b = await res.json();
          if (b && typeof b.error === 'string') detail = ': ' + b.error;
        } catch (_) { /* not JSON: the status code says enough */ }
        throw new Error('HTTP ' + res.status + detail);
      }
      const report = await res.json();
      if (!report || !Array.isArray(report.experts)) throw new Error('unexpected response (no experts list)');
      const receivedAt = Date.now();
      const generated = Date.parse(report.generatedAt);
      const previous = last;
      last = { report, receivedAt, skewMs: Number.isNaN(generated) ? 0 : receivedAt - generated };
      try {
        render(report);
      } catch (err) {
        last = previous;
        throw new Error('cannot render the report (' + (err && err.message) + ')');
      }
      setError(null);
    } catch (err) {
      setError(err && err.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : String((err && err.message) || err));
    } finally {
      clearTimeout(deadline);
      inFlight = false;
      // Polls are chained, never overlapping; a hidden tab waits for visibilitychange.
      if (!document.hidden) timer = setTimeout(poll, POLL_MS);
    }
  }

  document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
  setInterval(showConnection, 1000);
  poll();
})();
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** Allows exactly the inline script and style above, and fetches to the page's own origin. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface StatusPageOptions {
  /** Relative, so the page works behind a path prefix: resolved against the page's own URL. */
  statusUrl?: string;
  pollIntervalMs?: number;
  title?: string;
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

export function renderStatusPage({ statusUrl = 'status.json', pollIntervalMs = 2000, title = 'modestream status' }: StatusPageOptions = {}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body data-status-url="${escapeHtml(statusUrl)}" data-poll-ms="${Math.max(250, Math.round(pollIntervalMs))}">
<header class="top">
  <h1>${escapeHtml(title)}</h1>
  <span class="sub">MoDE data experts on a stream</span>
  <span class="right"><span id="connection" class="badge b-offline" data-testid="connection">offline</span><span id="updated" data-testid="updated">waiting for data…</span></span>
</header>
<main id="main" data-testid="main" data-stale="false">
  <div id="error-banner" class="banner error" role="alert" data-testid="error-banner" hidden></div>
  <div id="kafka-error" class="banner warning" role="status" data-testid="kafka-error" hidden></div>
  <div id="stats" data-testid="stats"></div>
  <div id="content"><p class="empty">Loading status…</p></div>
  <noscript><p class="banner warning">This page needs JavaScript to poll ${escapeHtml(statusUrl)}; the JSON itself is at <a href="${escapeHtml(statusUrl)}">${escapeHtml(statusUrl)}</a>.</p></noscript>
</main>
<footer id="footer" data-testid="footer"></footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
