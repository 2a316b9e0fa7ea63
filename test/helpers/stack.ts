/**
 * The real local stack the integration and end-to-end tests run against: the repository root,
 * the one source of truth for its addresses (honouring FRAMEWIRE_BROKERS and
 * FRAMEWIRE_TRITON_URL, as the product does), starting it, and free ports and random names so
 * that tests never share topics, groups or ports.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Compiled to dist/test/helpers/stack.js: the repository root is three levels up. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The stack's addresses, from the same environment variables as the product's commands. */
export const BROKERS = (process.env.FRAMEWIRE_BROKERS || '127.0.0.1:9092').split(',').map((b) => b.trim()).filter(Boolean);
export const TRITON_URL = process.env.FRAMEWIRE_TRITON_URL || '127.0.0.1:8001';
/** The test model (docs/contracts.md): solid colours in, their names out. */
export const MODEL = 'colour_probe';

export const randomId = (bytes = 4): string => randomBytes(bytes).toString('hex');

/**
 * `scripts/stack.sh up`: idempotent, returns at once when the stack is already up. Skipped when
 * scripts/test.sh has just brought it up for the whole run (FRAMEWIRE_STACK_UP=1): one probe
 * instead of one per file.
 */
export function ensureStack(): void {
  if (process.env.FRAMEWIRE_STACK_UP === '1') return;
  execFileSync('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up'], { stdio: 'inherit' });
}

/** A TCP port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function randomName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomId(3)}`;
}
