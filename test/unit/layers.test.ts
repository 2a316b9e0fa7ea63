/**
 * The layering the folders promise (docs/architecture.md): stages and components meet through
 * core/, never through the wiring. A module in a stage or component folder imports nothing from
 * topology/, and core/ imports only core/, node builtins and packages (plus the types of the
 * process-wide services in telemetry/ that every component is handed, core/component.ts). The
 * wiring (topology/) and the dashboard import no component's folder: they reach components
 * through the registry and the capabilities a component declares.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const src = path.join(root, 'src');

const BELOW_TOPOLOGY = ['decode', 'infer', 'batch', 'sources', 'sinks', 'alerts', 'health', 'postprocess', 'kafka', 'core'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Import {
  specifier: string;
  typeOnly: boolean;
}

/** Static imports, re-exports and dynamic imports of one module (comments stripped first). */
function importsOf(text: string): Import[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: Import[] = [];
  for (const m of code.matchAll(/^\s*(import|export)\s+(type\s+)?[^;'"]*?\bfrom\s+'([^']+)'/gm)) out.push({ specifier: m[3]!, typeOnly: m[2] !== undefined });
  for (const m of code.matchAll(/^\s*import\s+'([^']+)'/gm)) out.push({ specifier: m[1]!, typeOnly: false });
  for (const m of code.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) out.push({ specifier: m[1]!, typeOnly: false });
  return out;
}

/** The folder under src/ an import of `file` lands in, or undefined for a package or builtin. */
function targetFolder(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const rel = path.relative(src, path.resolve(path.dirname(file), specifier));
  return rel.startsWith('..') ? '(outside src)' : rel.split(path.sep)[0];
}

const modules = sources(src).map((file) => ({ file, folder: path.relative(src, file).split(path.sep)[0]!, imports: importsOf(readFileSync(file, 'utf8')) }));

test('the import scan sees the imports it must judge', () => {
  const seen = modules.reduce((n, m) => n + m.imports.length, 0);
  assert.ok(seen > 300, `found only ${seen} imports in src/: the patterns no longer match the code`);
  assert.deepEqual(importsOf("import type { A } from '../x.js';\nexport { b } from './b.js';\nconst m = await import('../topology/y.js');"), [
    { specifier: '../x.js', typeOnly: true },
    { specifier: './b.js', typeOnly: false },
    { specifier: '../topology/y.js', typeOnly: false },
  ]);
});

test('nothing below topology/ imports topology/', () => {
  const upward = modules
    .filter((m) => BELOW_TOPOLOGY.includes(m.folder))
    .flatMap((m) => m.imports.filter((i) => targetFolder(m.file, i.specifier) === 'topology').map((i) => `${path.relative(root, m.file)} imports ${i.specifier}`));
  assert.deepEqual(upward, [], 'move the contract it needs into src/core/');
});

test('core/ imports only core/, node builtins and packages', () => {
  const outside = modules
    .filter((m) => m.folder === 'core')
    .flatMap((m) =>
      m.imports
        .filter((i) => {
          const folder = targetFolder(m.file, i.specifier);
          if (folder === undefined || folder === 'core') return false;
          // The services a component's build is handed (core/component.ts): their types, not their code.
          return !(i.typeOnly && folder === 'telemetry');
        })
        .map((i) => `${path.relative(root, m.file)} imports ${i.specifier}`),
    );
  assert.deepEqual(outside, []);
});

/** `sinks/kafka` for an import landing in a component's folder (sinks/<type>/, sources/<type>/); undefined otherwise. */
function componentFolder(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const parts = path.relative(src, path.resolve(path.dirname(file), specifier)).split(path.sep);
  return (parts[0] === 'sinks' || parts[0] === 'sources') && parts.length > 2 ? `${parts[0]}/${parts[1]}` : undefined;
}

test('the wiring and the dashboard name no component: they ask for capabilities (core/sink.ts, core/source.ts)', () => {
  // The detector sees the imports that are allowed: src/components.ts registers every component.
  const registered = modules.find((m) => path.relative(src, m.file) === 'components.ts')!;
  assert.deepEqual([...new Set(registered.imports.map((i) => componentFolder(registered.file, i.specifier)).filter(Boolean))].sort(), ['sinks/kafka', 'sinks/webhook', 'sinks/websocket', 'sources/kafka']);
  const concrete = modules
    .filter((m) => m.folder === 'topology' || m.folder === 'dashboard')
    .flatMap((m) => m.imports.filter((i) => componentFolder(m.file, i.specifier)).map((i) => `${path.relative(root, m.file)} imports ${i.specifier}`));
  assert.deepEqual(concrete, [], 'look the component up in the registry, or declare a capability in core/ and ask for it');
});
