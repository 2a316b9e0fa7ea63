import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseTopology } from '../../src/config/load.js';
import { readSecret } from '../../src/config/secret.js';
import { FramewireError } from '../../src/core/errors.js';
import { ANONYMOUS, HttpAuth, presentedToken, isDenial } from '../../src/telemetry/auth/auth.js';
import { httpAuthSchema } from '../../src/telemetry/auth/config.js';
import { RateLimit, admit } from '../../src/sinks/websocket/admission.js';
import { websocketSinkSchema } from '../../src/sinks/websocket/config.js';

const req = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;
const url = (s: string) => new URL(s, 'http://x');
const ENV = { TOK_ALL: 'secret-all', TOK_LOBBY: 'secret-lobby' };

function auth(extra: object = {}): HttpAuth {
  const cfg = httpAuthSchema.parse({
    tokens: [
      { name: 'ops', secret: { env: 'TOK_ALL' } },
      { name: 'lobby', secret: { env: 'TOK_LOBBY' }, streams: '^lobby-' },
    ],
    ...extra,
  });
  return HttpAuth.fromConfig(cfg, ENV)!;
}

test('no tokens configured: no access control at all', () => {
  assert.equal(HttpAuth.fromConfig(httpAuthSchema.parse({}), {}), undefined);
  const t = parseTopology('sources: [{ type: kafka }]\nmodels: [{ name: m }]\nsinks: [{ type: websocket }]\n', 't.yaml');
  assert.deepEqual(t.http.auth, { tokens: [], protectMetrics: false, protectHealth: false });
});

test('the token is taken from the Authorization header, then ?token=, then the bearer subprotocol', () => {
  assert.equal(presentedToken(req({ authorization: 'Bearer abc' }), url('/ws?token=zzz')), 'abc');
  assert.equal(presentedToken(req({ authorization: 'Basic abc' }), url('/ws?token=zzz')), undefined, 'a non-bearer Authorization is not overridden by the query');
  assert.equal(presentedToken(req({}), url('/ws?token=q1')), 'q1');
  assert.equal(presentedToken(req({ 'sec-websocket-protocol': 'framewire, framewire.bearer.p1' }), url('/ws')), 'p1');
  assert.equal(presentedToken(req({}), url('/ws')), undefined);
});

test('tokens map to their principal; a wrong or missing token is refused with 401', () => {
  const a = auth();
  assert.equal(a.principalOf('secret-all')?.name, 'ops');
  assert.equal(a.principalOf('secret-lobby')?.name, 'lobby');
  assert.equal(a.principalOf('secret-lobbyX'), undefined);
  assert.equal(a.principalOf(''), undefined);
  const denied = a.authenticateUpgrade(req({}), url('/ws'));
  assert.ok(isDenial(denied) && denied.status === 401);
  const lobby = a.authenticateUpgrade(req({ authorization: 'Bearer secret-lobby' }), url('/ws'));
  assert.ok(!isDenial(lobby));
  assert.equal(lobby.allows('lobby-1'), true);
  assert.equal(lobby.allows('cam-1'), false);
});

test('/metrics and /healthz stay open unless configured; the dashboard needs a token', () => {
  const open = auth();
  assert.equal(open.checkRequest(req({}), url('/metrics')), undefined);
  assert.equal(open.checkRequest(req({}), url('/healthz')), undefined);
  assert.equal(open.checkRequest(req({}), url('/readyz')), undefined);
  assert.equal(open.checkRequest(req({}), url('/'))?.status, 401);
  assert.equal(open.checkRequest(req({}), url('/?token=secret-lobby')), undefined);
  const closed = auth({ protectMetrics: true, protectHealth: true });
  assert.equal(closed.checkRequest(req({}), url('/metrics'))?.status, 401);
  assert.equal(closed.checkRequest(req({}), url('/healthz'))?.status, 401);
  assert.equal(closed.checkRequest(req({ authorization: 'Bearer secret-all' }), url('/metrics')), undefined);
});

test('secrets come from env or a file; a missing one names the field', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-auth-'));
  try {
    const f = path.join(dir, 'token');
    writeFileSync(f, '  from-file\n');
    assert.equal(readSecret({ file: f }, 'x'), 'from-file');
    assert.equal(readSecret({ env: 'A' }, 'x', { A: 'from-env' }), 'from-env');
    assert.throws(() => readSecret({ env: 'NOPE' }, 'http.auth.tokens[0].secret', {}), (e: FramewireError) => e.code === 'SECRET_UNREADABLE' && /http\.auth\.tokens\[0\]\.secret: environment variable NOPE is not set/.test(e.message));
    assert.throws(() => readSecret({ file: path.join(dir, 'missing') }, 'f'), (e: FramewireError) => e.code === 'SECRET_UNREADABLE' && /cannot read/.test(e.message));
    writeFileSync(f, '\n');
    assert.throws(() => readSecret({ file: f }, 'f'), /empty/);
    assert.throws(() => parseTopology(`http: { auth: { tokens: [ { name: a, secret: { env: TOK_ALL }, streams: "(" } ] } }\nsources: [{ type: kafka }]\nmodels: [{ name: m }]\nsinks: [{ type: websocket }]\n`, 't.yaml'), /http\.auth\.tokens\[0\]\.streams: not a valid regular expression/);
    assert.throws(() => httpAuthSchema.parse({ tokens: [{ name: 'a', secret: 'inline' }] }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('admission: origin allow-list, client limit, and ?streams= within the token', () => {
  const cfg = websocketSinkSchema.parse({ type: 'websocket', maxClients: 2, allowedOrigins: ['https://ops.example'] });
  const a = auth();
  const ops = a.principalOf('secret-all')!;
  const lobbyToken = a.principalOf('secret-lobby')!;
  const ok = (r: object) => !('reason' in r);
  assert.ok(ok(admit(req({}), url('/ws'), cfg, ops, 0)));
  assert.ok(ok(admit(req({ origin: 'https://ops.example' }), url('/ws'), cfg, ops, 0)));
  assert.deepEqual(pick(admit(req({ origin: 'https://evil.example' }), url('/ws'), cfg, ops, 0)), [403, 'origin']);
  assert.deepEqual(pick(admit(req({}), url('/ws'), cfg, ops, 2)), [503, 'full']);
  assert.deepEqual(pick(admit(req({}), url('/ws?streams=lobby-1,cam-1'), cfg, lobbyToken, 0)), [403, 'forbidden']);
  const lobby = admit(req({}), url('/ws?streams=lobby-1'), cfg, lobbyToken, 0);
  assert.ok(ok(lobby) && 'streams' in lobby && lobby.streams?.has('lobby-1'));
  // Without tokens configured anyone may connect (within the other limits).
  assert.ok(ok(admit(req({}), url('/ws?streams=cam-1'), cfg, ANONYMOUS, 0)));
});

function pick(r: ReturnType<typeof admit>): [number, string] | 'admitted' {
  return 'reason' in r ? [r.status, r.reason] : 'admitted';
}

test('subscribe rate limit: a burst, then the average rate; refusals in a row are counted', () => {
  const r = new RateLimit(2, 3);
  const t0 = performance.now();
  assert.deepEqual([r.take(t0), r.take(t0), r.take(t0), r.take(t0)], [true, true, true, false]);
  assert.equal(r.refusedInARow, 1);
  assert.equal(r.take(t0 + 100), false, '0.2 of a token after 100 ms');
  assert.equal(r.refusedInARow, 2);
  assert.equal(r.take(t0 + 600), true, 'one token after 500 ms more');
  assert.equal(r.refusedInARow, 0);
  assert.equal(r.take(t0 + 10_600), true);
  assert.equal(r.take(t0 + 10_600), true);
  assert.equal(r.take(t0 + 10_600), true);
  assert.equal(r.take(t0 + 10_600), false, 'never more than the burst');
});
