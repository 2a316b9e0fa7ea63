/** `run --watch` (src/topology/watch.ts): one reload per real change, also when the file is replaced by a rename. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { watchTopology } from '../../src/topology/watch.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const SETTLE_MS = 100;
/** A reload comes SETTLE_MS after the last event; on a loaded machine the event itself can be late. */
const RELOAD_WITHIN_MS = 5000;

test('a burst of writes is one reload, an unchanged rewrite none, a replacing rename one', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fw-watch-'));
  const file = path.join(dir, 'topology.yaml');
  writeFileSync(file, 'models: [{ name: open_nsfw }]\n');
  // What the file held at each reload: an extra or a missing reload shows as a different list.
  const reloads: string[] = [];
  const w = watchTopology(file, () => reloads.push(readFileSync(file, 'utf8')), SETTLE_MS);
  const reloaded = (n: number) => waitUntil(() => reloads.length >= n, RELOAD_WITHIN_MS, 20);
  try {
    // Same bytes again: no reload. An absence can only be waited for: well past the settle time.
    writeFileSync(file, 'models: [{ name: open_nsfw }]\n');
    await sleep(3 * SETTLE_MS);
    assert.deepEqual(reloads, []);
    // Several writes in a row: one reload, after they settle, of the last content.
    writeFileSync(file, 'models: [{ name: open_nsfw_int8 }]\n');
    writeFileSync(file, 'models: [{ name: open_nsfw_int8, version: 1 }]\n');
    assert.ok(await reloaded(1), 'no reload after the writes');
    // An editor's (or a config map's) replace: write a new file, rename it over the old one.
    writeFileSync(path.join(dir, 'topology.yaml.new'), 'models: [{ name: open_nsfw }]\n');
    renameSync(path.join(dir, 'topology.yaml.new'), file);
    assert.ok(await reloaded(2), 'no reload after the rename');
    // Other files in the folder do not count: the next reload is the next change of the topology.
    writeFileSync(path.join(dir, 'other.yaml'), 'x: 1\n');
    await sleep(3 * SETTLE_MS);
    writeFileSync(file, 'models: [{ name: open_nsfw_fp16 }]\n');
    assert.ok(await reloaded(3), 'no reload after the last write');
    await sleep(3 * SETTLE_MS); // a late extra reload would show here
    assert.deepEqual(reloads, ['models: [{ name: open_nsfw_int8, version: 1 }]\n', 'models: [{ name: open_nsfw }]\n', 'models: [{ name: open_nsfw_fp16 }]\n']);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
