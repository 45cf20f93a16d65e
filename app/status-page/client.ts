/**
 * The status page's browser script: polls status.json and renders expert freshness, training, partitions
 * and events. Inlined into the page by ../status-page.ts, so it must stay self-contained: type-only
 * imports, nothing that survives compilation as an `import`.
 *
 * Compiled by its own program (./tsconfig.json: DOM lib, no Node types) because a DOM lib in the main
 * program would make `document` and friends type-check in the Node code too.
 *
 * Safety: the DOM is built with createElement/textContent only, so nothing from the report is ever
 * parsed as HTML. Settings come from data- attributes on <body>, so the script, and with it the hash the
 * CSP allows, is constant.
 */
import type { StatusReport } from '../../src/status.js';

type Expert = StatusReport['experts'][number];
type Job = StatusReport['jobs'][number];
type ClusterNode = StatusReport['nodes'][number];
/** What el() accepts as children: nodes, text, or nothing (skipped). */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined>;
interface Column {
  label: string;
  num?: boolean;
  wrap?: boolean;
}
interface Received {
  report: StatusReport;
  receivedAt: number;
  /** Browser clock minus server clock, so that ages are taken against the server's generatedAt. */
  skewMs: number;
}

const body = document.body;
const POLL_MS = Number(body.dataset.pollMs) || 2000;
const STATUS_URL = body.dataset.statusUrl || 'status.json';
// A hung request must not stop the polling loop.
const TIMEOUT_MS = Math.max(2 * POLL_MS, 5000);
const nf = new Intl.NumberFormat(undefined);
const nf2 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const nf4 = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 });

let last: Received | null = null;
let timer = 0;
let inFlight = false;

function $(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from the page`);
  return node;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | readonly Child[])[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = String(v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
const dash = () => el('span', { class: 'muted', 'aria-label': 'none' }, '\u2014');
const finite = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n);
const int = (n: number | null | undefined): Child => (finite(n) ? nf.format(n) : dash());
const dec = (n: number | null | undefined, f: Intl.NumberFormat = nf2): Child => (finite(n) ? f.format(n) : dash());

function age(seconds: number | null): string {
  if (!finite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.floor(s / 3600);
  if (h < 36) return `${h} h ${Math.round((s - h * 3600) / 60)} min`;
  const d = Math.floor(s / 86400);
  return `${d} d ${Math.round((s - d * 86400) / 3600)} h`;
}
// Ages are taken against the server clock (generatedAt), corrected for the time since the response.
function secondsSince(iso: string): number | null {
  const t = Date.parse(iso);
  if (!last || Number.isNaN(t)) return null;
  return (Date.now() - last.skewMs - t) / 1000;
}
function when(iso: string | null): Child {
  if (!iso) return dash();
  const s = secondsSince(iso);
  return el('time', { datetime: iso, title: iso }, s === null ? iso : `${age(s)} ago`);
}
const badge = (text: string, testid: string) => el('span', { class: `badge b-${text}`, 'data-testid': testid }, text);

function table(testid: string, caption: string, columns: readonly Column[], rows: readonly HTMLTableRowElement[], emptyText: string): HTMLElement {
  if (rows.length === 0) return el('p', { class: 'empty', 'data-testid': `${testid}-empty` }, emptyText);
  const head = el('tr', {}, columns.map((c) => el('th', { scope: 'col', class: c.num ? 'num' : '' }, c.label)));
  return el('table', { 'data-testid': testid }, el('caption', { class: 'visually-hidden' }, caption), el('thead', {}, head), el('tbody', {}, rows));
}
function cells(values: readonly Child[], columns: readonly Column[]): HTMLTableCellElement[] {
  return values.map((v, i) => el('td', { class: (columns[i]?.num ? 'num' : '') + (columns[i]?.wrap ? ' wrap' : '') }, v));
}
function panel(id: string, title: string, count: number | undefined, content: Node): HTMLElement {
  const h = el('h2', { id: `${id}-title` }, title, count === undefined ? null : el('span', { class: 'count' }, ` (${nf.format(count)})`));
  return el('section', { class: 'panel', 'aria-labelledby': `${id}-title`, 'data-testid': id }, h, content);
}

function stat(label: string, value: Child, note: string | null, testid: string): HTMLElement {
  return el('div', { class: 'stat' }, el('dt', {}, label), el('dd', { 'data-testid': testid }, value, note ? el('span', { class: 'note' }, note) : null));
}
function renderStats(r: StatusReport): HTMLElement {
  const c = r.centroids;
  const reservoir = r.reservoir ? `${nf.format(r.reservoir.seen)} / ${nf.format(r.reservoir.capacity)} sampled` : null;
  const e = r.embedder;
  return el('dl', { class: 'stats' }, [
    stat('Routing epoch', c ? int(c.epoch) : 'none', c ? `${nf.format(c.fine)} fine \u00b7 ${c.dim}-d` : `not bootstrapped: ${reservoir ?? ''}`, 'stat-epoch'),
    stat('Experts', int(r.experts.length), c ? `${nf.format(c.experts)} in epoch` : null, 'stat-experts'),
    stat('Records', int(r.totalRecords), r.unrouted > 0 ? `${nf.format(r.unrouted)} unrouted` : null, 'stat-records'),
    stat('Dead letters', int(r.deadLettered), r.deadLettered === null ? 'Kafka unavailable' : null, 'stat-dead-letters'),
    stat('Snapshot', r.snapshot ? `v${r.snapshot.version}` : 'none', r.snapshot ? `epoch ${r.snapshot.epoch}, ${age(secondsSince(r.snapshot.createdAt))} ago` : null, 'stat-snapshot'),
    stat('Backend', r.backend ? r.backend.name : dash(), r.backend?.adapter || null, 'stat-backend'),
    ...(r.images && r.images.meanDecodeMs !== null
      ? [stat('Image decode', `${r.images.meanDecodeMs.toFixed(1)} ms`, `${nf.format(r.images.decoded)} decoded \u00b7 ${nf.format(r.images.failed)} failed \u00b7 ${r.images.decoder}`, 'stat-image-decode')]
      : []),
    stat(
      'Embedder',
      e.kind + (e.model ? ` ${e.model}` : ''),
      (e.dim !== null ? `${e.dim}-d ` : '') + (e.fingerprint || '') + (e.mismatch ? ' \u2014 epoch built with another embedder' : ''),
      'stat-embedder',
    ),
  ]);
}

const EXPERT_COLUMNS: readonly Column[] = [
  { label: 'Expert' }, { label: 'State' }, { label: 'Records', num: true }, { label: 'Fine clusters', num: true },
  { label: 'Version', num: true }, { label: 'Last trained' }, { label: 'Pending', num: true }, { label: 'Oldest pending', num: true },
  { label: 'Owner node' },
];
function expertRow(e: Expert, total: number, owner: string | null | undefined): HTMLTableRowElement {
  const fill = el('span');
  fill.style.setProperty('width', `${Math.min(100, (100 * e.records) / total).toFixed(1)}%`);
  const share = el('span', { class: 'share', 'aria-hidden': 'true' }, fill);
  const oldest = finite(e.oldestPendingAgeSeconds) ? age(e.oldestPendingAgeSeconds) : dash();
  return el('tr', { 'data-testid': 'expert-row', 'data-expert-id': e.id, 'data-state': e.state },
    cells([
      el('span', { 'data-testid': 'expert-id' }, `#${e.id}`),
      badge(e.state, 'expert-state'),
      el('span', {}, el('span', { 'data-testid': 'expert-records' }, int(e.records)), share),
      int(e.fineClusters),
      e.version === null ? dash() : `v${e.version}`,
      when(e.lastTrainedAt),
      el('span', { 'data-testid': 'expert-pending' }, int(e.pending)),
      oldest,
      owner ? el('span', { 'data-testid': 'expert-owner' }, owner) : dash(),
    ], EXPERT_COLUMNS));
}
function renderExperts(r: StatusReport): HTMLElement {
  const total = Math.max(1, r.totalRecords);
  // An older server sends no cluster part: the column stays empty.
  const owners = new Map((r.cluster?.experts ?? []).map((c) => [c.id, c.owner]));
  const rows = r.experts.map((e) => expertRow(e, total, owners.get(e.id)));
  const empty = r.centroids ? 'No experts in this epoch yet.' : 'No experts yet: the centroids bootstrap once the reservoir sample is full.';
  return panel('experts', 'Experts', r.experts.length, table('experts-table', 'Experts and their freshness', EXPERT_COLUMNS, rows, empty));
}

const QUEUE_COLUMNS: readonly Column[] = [{ label: '#', num: true }, { label: 'Job' }, { label: 'Reason', wrap: true }, { label: 'Priority', num: true }];
function renderQueue(r: StatusReport): HTMLElement {
  const rows = r.trainingQueue.map((q, i) => el('tr', { 'data-testid': 'queue-row', 'data-job-name': q.name }, cells([i + 1, q.name, q.reason, dec(q.priority, nf4)], QUEUE_COLUMNS)));
  return panel('queue', 'Training queue', r.trainingQueue.length, table('queue-table', 'Jobs waiting for the trainer', QUEUE_COLUMNS, rows, 'Nothing queued.'));
}

const JOB_COLUMNS: readonly Column[] = [{ label: 'Job' }, { label: 'State' }, { label: 'Progress' }, { label: 'Loss', num: true }, { label: 'Samples/s', num: true }, { label: 'Backend' }, { label: 'Updated' }];
// Running first, then failed, then done; a state this script does not know yet sorts last.
const JOB_ORDER: Partial<Record<string, number>> = { running: 0, failed: 1, done: 2 } satisfies Record<Job['state'], number>;
function renderJobs(r: StatusReport): HTMLElement {
  const rank = (j: Job) => JOB_ORDER[j.state] ?? 3;
  const jobs = r.jobs.slice().sort((a, b) => rank(a) - rank(b) || Date.parse(b.updatedAt) - Date.parse(a.updatedAt));
  const rows: HTMLTableRowElement[] = [];
  for (const j of jobs) {
    const pct = j.totalSteps > 0 ? Math.min(100, (100 * j.step) / j.totalSteps) : 0;
    const label = `${nf.format(j.step)} / ${nf.format(j.totalSteps)} (${pct.toFixed(0)}%)`;
    const progress = el('div', { class: 'progress' },
      el('progress', { max: Math.max(1, j.totalSteps), value: j.step, 'aria-label': `Progress of ${j.name}: ${label}`, 'data-testid': 'job-progress' }),
      el('span', { 'data-testid': 'job-steps' }, label));
    const backend = j.backend + (j.adapter ? ` (${j.adapter})` : '');
    rows.push(el('tr', { 'data-testid': 'job-row', 'data-job-name': j.name, 'data-state': j.state },
      cells([j.name, badge(j.state, 'job-state'), progress, dec(j.loss, nf4), dec(j.samplesPerSecond, nf), backend, when(j.updatedAt)], JOB_COLUMNS)));
    if (j.error) rows.push(el('tr', { 'data-testid': 'job-error' }, el('td', { colspan: JOB_COLUMNS.length, class: 'wrap' }, el('span', { class: 'badge b-failed' }, 'error'), ' ', j.error)));
  }
  return panel('jobs', 'Training jobs', r.jobs.length, table('jobs-table', 'Running and recent training jobs', JOB_COLUMNS, rows, 'No training jobs yet.'));
}

const MODEL_COLUMNS: readonly Column[] = [{ label: 'Model' }, { label: 'Version', num: true }, { label: 'Trained' }, { label: 'Steps', num: true }, { label: 'Loss', num: true }, { label: 'Records', num: true }, { label: 'Samples/s', num: true }, { label: 'Backend' }];
function renderModels(r: StatusReport): HTMLElement {
  const rows = r.models.map((m) => el('tr', { 'data-testid': 'model-row', 'data-model-name': m.name },
    cells([m.name, `v${m.version}`, when(m.trainedAt), int(m.steps), dec(m.loss, nf4), int(m.records), dec(m.samplesPerSecond, nf), m.backend], MODEL_COLUMNS)));
  return panel('models', 'Published models', r.models.length, table('models-table', 'Newest version of each model', MODEL_COLUMNS, rows, 'No model published yet.'));
}

const PARTITION_COLUMNS: readonly Column[] = [{ label: 'Stage' }, { label: 'Topic' }, { label: 'Partition', num: true }, { label: 'Position', num: true }, { label: 'End', num: true }, { label: 'Lag', num: true }];
function renderPartitions(r: StatusReport): HTMLElement {
  const rows = r.partitions.map((p) => {
    const lagClass = p.lag === null ? '' : p.lag > 10000 ? 'lag-high' : p.lag > 0 ? 'lag-some' : '';
    return el('tr', { 'data-testid': 'partition-row', 'data-stage': p.stage, 'data-topic': p.topic, 'data-partition': p.partition },
      cells([p.stage, p.topic, p.partition, int(p.position), int(p.end), el('span', { class: lagClass, 'data-testid': 'partition-lag' }, int(p.lag))], PARTITION_COLUMNS));
  });
  const totalLag = r.partitions.reduce((s, p) => s + (p.lag || 0), 0);
  const title = r.partitions.length ? `Partitions \u00b7 total lag ${nf.format(totalLag)}` : 'Partitions';
  const empty = r.kafkaError ? 'Kafka unavailable: no offsets.' : 'No partitions reported.';
  return panel('partitions', title, undefined, table('partitions-table', 'Consumer positions and lag per partition', PARTITION_COLUMNS, rows, empty));
}

const NODE_COLUMNS: readonly Column[] = [
  { label: 'Node' }, { label: 'State' }, { label: 'Last heartbeat' }, { label: 'Roles', wrap: true }, { label: 'Leader' },
  { label: 'Routed partitions' }, { label: 'Restores', wrap: true }, { label: 'HTTP' },
];
function nodeRow(n: ClusterNode): HTMLTableRowElement {
  const restores = n.restores.filter((x) => x.state === 'restoring').map((x) => `p${x.partition} ${nf.format(x.applied - x.from)} / ${nf.format(x.target - x.from)}`);
  return el('tr', { 'data-testid': 'node-row', 'data-node-id': n.id, 'data-state': n.state },
    cells([
      el('span', { 'data-testid': 'node-id' }, n.id),
      badge(n.state, 'node-state'),
      `${age(n.heartbeatAgeSeconds)} ago`,
      n.roles.join(', '),
      n.leader === null ? dash() : n.leader ? 'leader' : 'follower',
      n.partitions.routed.length ? n.partitions.routed.join(', ') : dash(),
      restores.length ? restores.join('; ') : dash(),
      n.httpUrl ?? dash(),
    ], NODE_COLUMNS));
}
function renderNodes(r: StatusReport): HTMLElement {
  // An older server sends no nodes list.
  const nodes = r.nodes ?? [];
  const empty = r.nodesError ? `The nodes topic could not be read: ${r.nodesError}` : 'No heartbeats on the nodes topic yet.';
  return panel('nodes', 'Nodes', nodes.length, table('nodes-table', 'Nodes of the cluster and their heartbeats', NODE_COLUMNS, nodes.map(nodeRow), empty));
}

const EVENT_COLUMNS: readonly Column[] = [{ label: 'When' }, { label: 'Kind' }, { label: 'Message', wrap: true }];
function renderEvents(r: StatusReport): HTMLElement {
  const events = r.events.slice().sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, 100);
  const rows = events.map((e) => el('tr', { 'data-testid': 'event-row', 'data-kind': e.kind }, cells([when(e.at), badge(e.kind, 'event-kind'), el('span', { 'data-testid': 'event-message' }, e.message)], EVENT_COLUMNS)));
  return panel('events', 'Recent events', r.events.length, table('events-table', 'Controller events, newest first', EVENT_COLUMNS, rows, 'No events yet.'));
}

function render(r: StatusReport): void {
  $('stats').replaceChildren(renderStats(r));
  const kafka = $('kafka-error');
  kafka.hidden = !r.kafkaError;
  kafka.textContent = r.kafkaError ? `Kafka unreachable, showing state from LMDB only: ${r.kafkaError}` : '';
  $('content').replaceChildren(
    renderNodes(r),
    renderExperts(r),
    renderJobs(r),
    el('div', { class: 'grid' }, renderQueue(r), renderPartitions(r)),
    renderEvents(r),
    renderModels(r),
  );
  const c = r.centroids;
  $('footer').replaceChildren(
    `Brokers: ${r.brokers.length ? r.brokers.join(', ') : 'none'}`,
    c ? ` \u00b7 epoch ${c.epoch} created ${c.createdAt}${c.balanced ? ', balanced' : ''}${c.oneStage ? ', one-stage' : ', two-stage'}` : '',
    r.reservoir ? ` \u00b7 reservoir ${nf.format(r.reservoir.seen)} / ${nf.format(r.reservoir.capacity)}` : '',
    ` \u00b7 report generated ${r.generatedAt}`,
  );
}

function showConnection(): void {
  const updated = $('updated');
  const conn = $('connection');
  const stale = !$('error-banner').hidden;
  updated.textContent = last ? `updated ${age((Date.now() - last.receivedAt) / 1000)} ago` : 'waiting for data\u2026';
  conn.className = `badge ${stale ? 'b-offline' : 'b-live'}`;
  conn.textContent = stale ? (last ? 'stale' : 'offline') : 'live';
}

function setError(message: string | null): void {
  const banner = $('error-banner');
  const main = $('main');
  if (message === null) {
    banner.hidden = true;
    banner.textContent = '';
    main.dataset.stale = 'false';
  } else {
    banner.hidden = false;
    const since = last ? ` Showing the last good data, received ${age((Date.now() - last.receivedAt) / 1000)} ago (marked stale).` : ' No data received yet.';
    banner.textContent = `Cannot load ${STATUS_URL}: ${message}.${since}`;
    main.dataset.stale = last ? 'true' : 'false';
  }
  showConnection();
}

// A failed fetch may reject with a DOMException or anything else; read what is there.
function fieldOf(err: unknown, key: 'name' | 'message'): string {
  const value = typeof err === 'object' && err !== null && key in err ? (err as Record<typeof key, unknown>)[key] : undefined;
  return typeof value === 'string' ? value : '';
}
const messageOf = (err: unknown) => fieldOf(err, 'message') || String(err);

/**
 * The server validates the report against the schema; the browser only checks that the answer is a
 * report at all (a proxy's error page, say, is not), without shipping a validator.
 */
function looksLikeReport(value: unknown): value is StatusReport {
  return typeof value === 'object' && value !== null && 'experts' in value && Array.isArray(value.experts);
}

async function poll(): Promise<void> {
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
        const b: unknown = await res.json();
        if (typeof b === 'object' && b !== null && 'error' in b && typeof b.error === 'string') detail = `: ${b.error}`;
      } catch {
        // Not JSON: the status code says enough.
      }
      throw new Error(`HTTP ${res.status}${detail}`);
    }
    const report: unknown = await res.json();
    if (!looksLikeReport(report)) throw new Error('unexpected response (no experts list)');
    const receivedAt = Date.now();
    const generated = Date.parse(report.generatedAt);
    const previous = last;
    last = { report, receivedAt, skewMs: Number.isNaN(generated) ? 0 : receivedAt - generated };
    try {
      render(report);
    } catch (err) {
      last = previous;
      throw new Error(`cannot render the report (${messageOf(err)})`);
    }
    setError(null);
  } catch (err) {
    setError(fieldOf(err, 'name') === 'AbortError' ? `no answer within ${TIMEOUT_MS / 1000} s` : messageOf(err));
  } finally {
    clearTimeout(deadline);
    inFlight = false;
    // Polls are chained, never overlapping; a hidden tab waits for visibilitychange.
    if (!document.hidden) timer = setTimeout(() => void poll(), POLL_MS);
  }
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void poll();
});
setInterval(showConnection, 1000);
void poll();
