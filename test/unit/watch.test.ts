/** `run --watch` (src/topology/watch.ts): one reload per real change, also when the file is replaced by a rename. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { watchTopology } from '../../src/topology/watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a burst of writes is one reload, an unchanged rewrite none, a replacing rename one', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fw-watch-'));
  const file = path.join(dir, 'topology.yaml');
  writeFileSync(file, 'models: [{ name: open_nsfw }]\n');
  let reloads = 0;
  const w = watchTopology(file, () => reloads++, 100);
  try {
    // Same bytes again: no reload.
    writeFileSync(file, 'models: [{ name: open_nsfw }]\n');
    await sleep(300);
    assert.equal(reloads, 0);
    // Several writes in a row: one reload, after they settle.
    writeFileSync(file, 'models: [{ name: open_nsfw_int8 }]\n');
    writeFileSync(file, 'models: [{ name: open_nsfw_int8, version: 1 }]\n');
    await sleep(300);
    assert.equal(reloads, 1);
    // An editor's (or a config map's) replace: write a new file, rename it over the old one.
    writeFileSync(path.join(dir, 'topology.yaml.new'), 'models: [{ name: open_nsfw }]\n');
    renameSync(path.join(dir, 'topology.yaml.new'), file);
    await sleep(300);
    assert.equal(reloads, 2);
    // Other files in the folder do not count.
    writeFileSync(path.join(dir, 'other.yaml'), 'x: 1\n');
    await sleep(300);
    assert.equal(reloads, 2);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
