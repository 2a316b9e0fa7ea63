/**
 * Secrets (bearer tokens, SASL passwords, key passphrases) are never required inline in a
 * topology: a field names the environment variable or the file that holds the value. They are
 * read once, at start, and a missing one is a topology error naming the field.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod/v4';
import { FramewireError } from '../core/errors.js';

export const secretSchema = z
  .union([
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name').describe('Environment variable holding the secret.') }),
    z.strictObject({ file: z.string().min(1).describe('File holding the secret (surrounding whitespace is trimmed).') }),
  ])
  .describe('Where a secret comes from: `{ env: NAME }` or `{ file: PATH }`.');

export type SecretRef = z.infer<typeof secretSchema>;

/** The secret's value; `field` (e.g. `http.auth.tokens[0].secret`) names it in the error. */
export function readSecret(ref: SecretRef, field: string, env: NodeJS.ProcessEnv = process.env): string {
  let value: string | undefined;
  if ('env' in ref) {
    value = env[ref.env];
    if (value === undefined || value === '') throw new FramewireError('SECRET_UNREADABLE', 'config', `${field}: environment variable ${ref.env} is not set`);
  } else {
    try {
      value = readFileSync(ref.file, 'utf8');
    } catch (err) {
      throw new FramewireError('SECRET_UNREADABLE', 'config', `${field}: cannot read ${ref.file}: ${(err as Error).message}`, { cause: err });
    }
  }
  value = value.trim();
  if (!value) throw new FramewireError('SECRET_UNREADABLE', 'config', `${field}: the secret is empty`);
  return value;
}
