/** Shared by integration and e2e tests: the repository root and the real local stack. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BROKERS = [process.env.FRAMEWIRE_BROKERS ?? '127.0.0.1:9092'];
export const TRITON_URL = process.env.FRAMEWIRE_TRITON_URL ?? '127.0.0.1:8001';

/** Starts the local stack if it is not running (idempotent, serialised by the script's lock). */
export function ensureStack(): void {
  execFileSync('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up'], { stdio: 'inherit' });
}

export function randomName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
