/**
 * Import hygiene of the shipped code (src, streams, state, app, training, client, cli, examples), read from
 * the sources with the TypeScript parser: no import cycles, and the layer rules that keep the client and
 * the CLI light, the domain core free of infrastructure, and the product free of the Fashion-MNIST
 * examples (demo, feed, dataset, evaluation), which only the CLI, benchmarks and tests may use.
 *
 * Every kind of import is an edge: static, `export ... from`, dynamic `import('...')`, `typeof import()`,
 * and type-only ones too. Type-only imports vanish at run time, but a cycle made of them still means the
 * two modules cannot be layered (the type belongs below both), and madge counts them the same way.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The product: what `modestream run` and the client load. `training/` is checked once it exists. */
const PRODUCT = ['src', 'streams', 'state', 'app', 'training', 'client'].filter((d) => existsSync(join(ROOT, d)));
const FOLDERS = [...PRODUCT, 'cli', 'examples'];

interface Imports {
  /** Repository-relative paths (posix) of the local .ts files imported. */
  local: string[];
  /** Bare specifiers (packages, node: builtins). */
  external: string[];
}

const posix = (p: string) => p.split(sep).join('/');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

function specifiers(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: string[] = [];
  const literal = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node)) found.push(node.text);
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) literal(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) literal(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) literal(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) literal(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** `./x.js` -> `./x.ts`, `./dir` or `./dir/index.js` -> `./dir/index.ts`; undefined when not a local .ts file (e.g. .json). */
function resolveLocal(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts'), join(base.replace(/\.js$/, ''), 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c) && statSync(c).isFile());
}

function buildGraph(): Map<string, Imports> {
  const graph = new Map<string, Imports>();
  for (const folder of FOLDERS) {
    for (const file of tsFiles(join(ROOT, folder))) {
      const imports: Imports = { local: [], external: [] };
      for (const spec of specifiers(file)) {
        if (spec.startsWith('.')) {
          const target = resolveLocal(file, spec);
          if (target) imports.local.push(posix(relative(ROOT, target)));
        } else imports.external.push(spec);
      }
      graph.set(posix(relative(ROOT, file)), imports);
    }
  }
  return graph;
}

/** One example cycle per strongly connected component (Tarjan), as `a -> b -> ... -> a`. */
function cycles(graph: Map<string, Imports>): string[] {
  const edges = (n: string) => (graph.get(n)?.local ?? []).filter((m) => graph.has(m));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const connect = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || edges(v).includes(v)) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);

  // Within a component, the shortest path back from its first file (BFS) is a readable witness.
  return components.map((component) => {
    const members = new Set(component);
    const start = [...component].sort()[0]!;
    const parent = new Map<string, string>();
    const queue = [start];
    let closing: string | undefined;
    while (queue.length && !closing) {
      const v = queue.shift()!;
      for (const w of edges(v).filter((m) => members.has(m))) {
        if (w === start) {
          closing = v;
          break;
        }
        if (!parent.has(w)) {
          parent.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let v = closing!; v !== start; v = parent.get(v)!) path.splice(1, 0, v);
    const rest = component.length > path.length ? ` (component of ${component.length} files: ${[...component].sort().join(', ')})` : '';
    return `${[...path, start].join(' -> ')}${rest}`;
  });
}

/** `from -> to` for every local import of a file under `fromDir` that lands in one of `toDirs`. */
function crossings(graph: Map<string, Imports>, fromDir: string, toDirs: string[]): string[] {
  const out: string[] = [];
  for (const [file, { local }] of graph) {
    if (!file.startsWith(`${fromDir}/`)) continue;
    for (const target of local) if (toDirs.some((d) => target.startsWith(`${d}/`))) out.push(`${file} -> ${target}`);
  }
  return out.sort();
}

const packageOf = (spec: string) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

describe('import hygiene', () => {
  const graph = buildGraph();

  test('reads the sources (sanity: files and edges found)', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('cli/main.ts')?.local.length).toBeGreaterThan(0);
    // Dynamic imports are seen.
    expect(graph.get('cli/commands/run.ts')?.local).toContain('app/run.ts');
    expect(graph.get('cli/commands/demo.ts')?.local).toContain('examples/demo.ts');
  });

  test('no import cycles', () => {
    const found = cycles(graph);
    expect(found, `import cycles:\n  ${found.join('\n  ')}`).toEqual([]);
  });

  test('the product (src, streams, state, app, training, client) never imports examples/ (only cli/, bench/ and test/ may)', () => {
    // A user's deployment must not depend on the demo data set or its caption generator.
    expect(PRODUCT.flatMap((dir) => crossings(graph, dir, ['examples']))).toEqual([]);
  });

  test('examples/ builds on the product and never on cli/, bench/ or test/', () => {
    expect(crossings(graph, 'examples', ['cli', 'bench', 'test'])).toEqual([]);
  });

  test('client/ imports neither state/ nor the layers above it (the evaluators\' client must not pull in LMDB or Kafka)', () => {
    // With src/ kept free of them too (below), nothing the client loads reaches lmdb, kafkajs or rxjs.
    expect(crossings(graph, 'client', ['state', 'streams', 'app', 'training', 'cli'])).toEqual([]);
  });

  test('cli/ does not import state/ or streams/ (commands parse options, call app/, print)', () => {
    expect(crossings(graph, 'cli', ['state', 'streams'])).toEqual([]);
  });

  test('streams/ declares the ports it needs (streams/ports.ts) instead of importing the stores, and nothing above it', () => {
    expect(crossings(graph, 'streams', ['state', 'app', 'training', 'cli', 'client'])).toEqual([]);
  });

  test('state/ imports neither the stages nor anything above them', () => {
    expect(crossings(graph, 'state', ['streams', 'app', 'training', 'cli', 'client'])).toEqual([]);
  });

  test('training/ builds on src/ and state/, takes only the process wiring from app/, and imports neither streams/, cli/ nor client/', () => {
    // A training child reads its batches from LMDB: it needs no Kafka client, and the CLI is one of its callers.
    expect(crossings(graph, 'training', ['streams', 'cli', 'client'])).toEqual([]);
    // app/ composes training (run, roles, status); training takes from app/ only what every process opens.
    const wiring = new Set(['app/core.ts', 'app/logger.ts', 'app/telemetry.ts']);
    expect(crossings(graph, 'training', ['app']).filter((edge) => !wiring.has(edge.split(' -> ')[1]!))).toEqual([]);
  });

  test('src/ imports neither kafkajs, lmdb nor rxjs, nor any layer above it', () => {
    const infra = new Set(['kafkajs', 'lmdb', 'rxjs']);
    const bad: string[] = [];
    for (const [file, { external }] of graph) {
      if (!file.startsWith('src/')) continue;
      for (const spec of external) if (infra.has(packageOf(spec))) bad.push(`${file} -> ${spec}`);
    }
    expect(bad.sort()).toEqual([]);
    expect(crossings(graph, 'src', ['streams', 'state', 'app', 'training', 'cli', 'client'])).toEqual([]);
  });
});
