/**
 * The ops status page served at GET /status: one self-contained HTML document (inline CSS, and the
 * browser script of status-page/client.ts inlined as a module script; no framework, nothing fetched but
 * status.json) that polls the status report and renders the nodes, expert freshness, training, partitions and events.
 *
 * Safety: the script builds the DOM with createElement/textContent only, so nothing from the report is
 * ever parsed as HTML. The CSP allows exactly that script and this style (by hash) and fetches to the
 * same origin. Settings travel as data- attributes on <body> so the script, and with it its hash, is
 * constant.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

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
.b-failed, .b-failure, .b-offline, .b-dead { color: var(--bad); background: var(--bad-bg); }
.b-untrained, .b-stopped { color: var(--idle); background: var(--idle-bg); }
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

const CLIENT_COMPILED = new URL('./status-page/client.js', import.meta.url);
const CLIENT_SOURCE = new URL('./status-page/client.ts', import.meta.url);
// Running from dist/ of a checkout built without the client's own program (`tsc -p tsconfig.json` alone).
const CLIENT_SOURCE_FROM_DIST = new URL('../../app/status-page/client.ts', import.meta.url);

/**
 * The browser script, read once: tsc's output next to this module when running from dist/ (npm run build
 * compiles it), else its TypeScript source transpiled with the typescript package (vitest and other runs
 * from the sources, where no compiled copy sits next to this file). Transpiling drops types only; the
 * client is type-checked by its own program, app/status-page/tsconfig.json.
 */
function loadClientScript(): string {
  let script: string;
  if (existsSync(CLIENT_COMPILED)) {
    // The map comment would resolve against the page's URL, where no map is served.
    script = readFileSync(CLIENT_COMPILED, 'utf8').replace(/\n\/\/# sourceMappingURL=\S*\s*$/, '\n');
  } else {
    const source = [CLIENT_SOURCE, CLIENT_SOURCE_FROM_DIST].find((url) => existsSync(url));
    if (!source) throw new Error(`status page: ${fileURLToPath(CLIENT_COMPILED)} is missing; run \`npm run build\``);
    script = transpileClient(readFileSync(source, 'utf8'), fileURLToPath(source));
  }
  // Inlined as it is, so it must neither load anything (the CSP allows only this page and status.json)
  // nor end its own <script> element.
  if (/^\s*(import[\s{*'"]|export\s[^;]*\sfrom\s)|\bimport\s*\(/m.test(script)) throw new Error('status page: the client script has a runtime import; it must be self-contained (use `import type`)');
  if (/<\/script|<!--/i.test(script)) throw new Error('status page: the client script contains "</script" or "<!--" and cannot be inlined');
  return script;
}

function transpileClient(source: string, fileName: string): string {
  let ts: typeof import('typescript');
  try {
    // typescript is a dev dependency: required only here, when running from the sources.
    ts = createRequire(import.meta.url)('typescript') as typeof import('typescript');
  } catch {
    throw new Error(`status page: ${fileURLToPath(CLIENT_COMPILED)} is missing and typescript is not installed; run \`npm run build\``);
  }
  const { outputText } = ts.transpileModule(source, {
    fileName,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, sourceMap: false },
  });
  return outputText;
}

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** Allows exactly the inline script and style, and fetches to the page's own origin. */
function contentSecurityPolicy(script: string): string {
  return [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

let client: { script: string; csp: string } | undefined;
/** Loaded on first use, so that importing the HTTP server costs nothing until it serves the page. */
function clientScript(): { script: string; csp: string } {
  if (!client) {
    const script = loadClientScript();
    client = { script, csp: contentSecurityPolicy(script) };
  }
  return client;
}

export interface StatusPageOptions {
  /** Relative, so the page works behind a path prefix: resolved against the page's own URL. */
  statusUrl?: string;
  pollIntervalMs?: number;
  title?: string;
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

export interface StatusPage {
  html: string;
  /** The Content-Security-Policy to serve the page with: it allows exactly its inline script and style. */
  csp: string;
}

/** Throws when the client script cannot be found or is not fit to inline (see loadClientScript). */
export function renderStatusPage({ statusUrl = 'status.json', pollIntervalMs = 2000, title = 'modestream status' }: StatusPageOptions = {}): StatusPage {
  const { script, csp } = clientScript();
  const html = `<!doctype html>
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
<script type="module">${script}</script>
</body>
</html>
`;
  return { html, csp };
}
