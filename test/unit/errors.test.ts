/**
 * One error vocabulary: every code in the catalogue (src/core/errors.ts → docs/errors.md) is
 * raised somewhere in src/, and every code src/ raises is in the catalogue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEAD_LETTER_REASONS, ERROR_CODES } from '../../src/core/errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const files = sources(path.join(root, 'src')).filter((f) => !f.endsWith(path.join('core', 'errors.ts')));
const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');

test('every catalogued error code is raised (or dead-lettered with) somewhere in src/', () => {
  const unused = Object.keys(ERROR_CODES).filter((code) => !text.includes(`'${code}'`));
  assert.deepEqual(unused, [], `codes never raised: remove them or raise them`);
});

test('every code src/ raises or dead-letters with is catalogued and documented', () => {
  const raised = new Set<string>();
  for (const m of text.matchAll(/new FramewireError\(\s*'([A-Z_]+)'/g)) raised.add(m[1]!);
  for (const m of text.matchAll(/\.reject\([^,]+,\s*'([A-Z_]+)'/g)) raised.add(m[1]!);
  for (const m of text.matchAll(/\{ code: '([A-Z_]+)'/g)) raised.add(m[1]!);
  assert.ok(raised.size >= 10, `found only ${raised.size} raise sites: the patterns no longer match the code`);
  const catalogue = readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
  for (const code of raised) {
    assert.ok(code in ERROR_CODES, `${code} is raised but not in ERROR_CODES`);
    assert.ok(catalogue.includes('`' + code + '`'), `${code} is not in docs/errors.md`);
  }
  for (const code of Object.keys(DEAD_LETTER_REASONS)) assert.ok(raised.has(code), `dead-letter code ${code} is never used`);
});

/**
 * Plain throws left in src/, each a programmer's mistake no user input can cause (or caught at
 * once and said as a usage error). Anything a user can meet is a FramewireError with a code.
 */
const PLAIN_THROWS_ALLOWED: [file: string, message: string][] = [
  ['src/config/topology.ts', 'no ${kind} types are registered'], // src/components.ts not imported
  ['src/config/docs.ts', 'README.md lacks the metrics markers'], // the docs generator, run by developers
  ['src/topology/registry.ts', "${kind} type '${c.type}' is registered twice"], // at import, in src/components.ts
  ['src/core/queue.ts', 'capacity must be a positive integer'], // the capacity comes from the schema
  ['src/infer/triton/model.ts', 'item ${index} does not fit'], // the batch buffer is sized for the batch
  ['src/ingest/ingest.ts', 'a lavfi loop needs the frame size'], // loopArgs' caller measures it first
  ['src/tail/cli.ts', 'expected ws:// or wss://'], // caught beside it: `bad --url`, exit 2
];

test('src/ throws no plain Error, RangeError or TypeError a user could meet: FramewireError with a catalogued code', () => {
  const found: string[] = [];
  for (const file of sources(path.join(root, 'src'))) {
    if (file.includes(`${path.sep}proto${path.sep}`)) continue; // generated
    const rel = path.relative(root, file).split(path.sep).join('/');
    for (const m of readFileSync(file, 'utf8').matchAll(/throw\s+(?:new\s+)?(?:Error|RangeError|TypeError|SyntaxError)\(\s*[`'"]?(.*)/g)) found.push(`${rel}: ${m[1]}`);
  }
  const allowed = (site: string) => PLAIN_THROWS_ALLOWED.some(([file, message]) => site.startsWith(`${file}: ${message}`));
  assert.deepEqual(found.filter((s) => !allowed(s)), [], 'throw a FramewireError with a code from src/core/errors.ts (add the code there and run `npm run docs`)');
  const stale = PLAIN_THROWS_ALLOWED.filter(([file, message]) => !found.some((s) => s.startsWith(`${file}: ${message}`)));
  assert.deepEqual(stale, [], 'these plain throws are gone: take them off PLAIN_THROWS_ALLOWED');
  assert.ok(found.length >= PLAIN_THROWS_ALLOWED.length);
});
