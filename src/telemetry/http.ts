/** /metrics, /healthz, /readyz on one HTTP server; the WebSocket sink attaches its upgrade handler. */
import http from 'node:http';
import type { Metrics } from './metrics.js';
import type { HttpAuth } from './auth/auth.js';

export interface Readiness {
  /** Undefined when ready, else why not. */
  notReadyReason(): Promise<string | undefined>;
}

export async function startHttp(listen: string, metrics: Metrics, readiness: Readiness, auth?: HttpAuth): Promise<http.Server> {
  const idx = listen.lastIndexOf(':');
  const host = listen.slice(0, idx);
  const port = Number(listen.slice(idx + 1));
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (auth) {
      const denied = auth.checkRequest(req, new URL(req.url ?? '/', 'http://x'));
      if (denied) {
        metrics.httpRejected.inc({ reason: denied.reason });
        res.writeHead(denied.status, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="framewire"' });
        res.end(JSON.stringify({ error: denied.reason, message: denied.message }));
        return;
      }
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        },
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
    } else if (path === '/readyz') {
      readiness.notReadyReason().then((reason) => {
        res.writeHead(reason ? 503 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reason ? { status: 'not ready', reason } : { status: 'ready' }));
      });
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
