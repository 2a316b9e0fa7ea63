/**
 * Serves the dashboard page (src/dashboard/public: plain HTML, CSS and an ES module, no build step
 * and no external resources) at GET / and /dashboard/*. Files are read from the source folder of
 * the checkout (the compiled module lives in dist/src/dashboard/), once, at start.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FramewireError } from '../core/errors.js';

export const PUBLIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/dashboard/public');

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

export class DashboardFiles {
  private readonly files = new Map<string, { type: string; body: Buffer }>();

  constructor(dir = PUBLIC_DIR) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      throw new FramewireError('DASHBOARD_FILES_MISSING', 'sink', `dashboard: cannot read ${dir}: ${(err as Error).message}`, { cause: err });
    }
    for (const name of names) {
      const type = TYPES[path.extname(name)];
      if (type) this.files.set(name, { type, body: readFileSync(path.join(dir, name)) });
    }
    if (!this.files.has('index.html')) throw new FramewireError('DASHBOARD_FILES_MISSING', 'sink', `dashboard: no index.html in ${dir}`);
  }

  /** The paths served: `/`, `/index.html` and `/dashboard/<file>` for each file. */
  paths(): string[] {
    return ['/', '/index.html', ...[...this.files.keys()].map((n) => `/dashboard/${n}`)];
  }

  /** Answers GET / and /dashboard/<file>; false for any other path. */
  handle(pathname: string, req: IncomingMessage, res: ServerResponse): boolean {
    let name: string | undefined;
    if (pathname === '/' || pathname === '/index.html') name = 'index.html';
    else if (pathname.startsWith('/dashboard/')) name = pathname.slice('/dashboard/'.length);
    else return false;
    const f = this.files.get(name);
    if (!f || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(f ? 405 : 404);
      res.end();
      return true;
    }
    res.writeHead(200, { 'content-type': f.type, 'content-length': f.body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : f.body);
    return true;
  }
}
