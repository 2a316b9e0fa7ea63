/** The protocol types in src/infer/triton/proto/ are exactly what scripts/gen-proto.sh generates from proto/. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const committed = path.join(root, 'src/infer/triton/proto');

function files(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name), base) : [path.relative(base, path.join(dir, e.name))])).sort();
}

test('generated proto types match proto/ (run scripts/gen-proto.sh after changing a .proto)', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'framewire-proto-'));
  try {
    execFileSync('bash', [path.join(root, 'scripts/gen-proto.sh'), out], { cwd: root });
    const want = files(out);
    assert.ok(want.length > 20, `the generator wrote only ${want.length} files`);
    assert.deepEqual(files(committed), want);
    for (const f of want) assert.equal(readFileSync(path.join(committed, f), 'utf8'), readFileSync(path.join(out, f), 'utf8'), `${f} is stale`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
