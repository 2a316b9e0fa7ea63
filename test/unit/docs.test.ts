import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedDocs } from '../../src/config/docs.js';
import { ERROR_CODES } from '../../src/core/errors.js';
import { METRIC } from '../../src/telemetry/metrics.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('generated docs and the README metrics table match the schemas and metric definitions (run `npm run docs`)', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  for (const [file, text] of Object.entries(generatedDocs(readme))) {
    assert.equal(readFileSync(path.join(root, file), 'utf8'), text, `${file} is stale: run npm run docs`);
  }
});

test('every error code is in the catalogue and every metric is documented in the README', () => {
  const catalogue = readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
  for (const code of Object.keys(ERROR_CODES)) assert.ok(catalogue.includes('`' + code + '`'), code);
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  for (const name of Object.values(METRIC)) {
    assert.ok(name.startsWith('framewire_'), name);
    assert.ok(readme.includes(name), `README lacks metric ${name}`);
  }
});
