// Runs last (scripts/test.sh lists it last): it stops and restarts the shared stack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers/stack.js';

const stack = (cmd: string) => {
  const t0 = Date.now();
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/stack.sh'), cmd], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr, ms: Date.now() - t0 };
};
// pgrep without a shell: a shell's own command line would match the pattern.
const running = (pattern: string) => {
  const r = spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').filter(Boolean).length;
};

test('stack up is idempotent, down leaves no process, status tells the truth', { timeout: 300_000 }, () => {
  const first = stack('up');
  assert.equal(first.code, 0, first.out);
  const st = stack('status');
  assert.equal(st.code, 0);
  assert.match(st.out, /kafka:\s+ready/);
  assert.match(st.out, /triton:\s+ready/);

  const second = stack('up');
  assert.equal(second.code, 0, second.out);
  assert.ok(second.ms < 5000, `second up took ${second.ms} ms`);
  assert.match(second.out, /already up/);

  const down = stack('down');
  assert.equal(down.code, 0, down.out);
  assert.equal(running('kafka\\.Kafka'), 0, 'no broker process after down');
  assert.equal(running('tritonserver'), 0, 'no Triton process after down');
  assert.equal(running('triton_python_backend_stub'), 0, 'no Python backend stub after down');
  const stopped = stack('status');
  assert.notEqual(stopped.code, 0);
  assert.match(stopped.out, /kafka:\s+stopped/);
  assert.match(stopped.out, /triton:\s+stopped/);
  assert.equal(stack('down').code, 0, 'down is idempotent');

  const again = stack('up');
  assert.equal(again.code, 0, again.out);
  console.log(`stack up (warm cache, from stopped): ${again.ms} ms; already up: ${second.ms} ms`);
  assert.equal(stack('status').code, 0);
});
