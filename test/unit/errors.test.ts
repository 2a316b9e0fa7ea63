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
