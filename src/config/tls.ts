/**
 * TLS settings shared by the Kafka client and the Triton client: PEM files named in the
 * topology (read once at start), for a CA other than the system's and for client certificates
 * (mutual TLS).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod/v4';
import { FramewireError } from '../core/errors.js';
import { readSecret, secretSchema } from './secret.js';

export const tlsSchema = z
  .strictObject({
    ca: z.string().min(1).optional().describe("PEM file of the CA(s) that signed the server's certificate; default: the system's CAs."),
    cert: z.string().min(1).optional().describe('PEM file of our client certificate (mutual TLS); needs `key`.'),
    key: z.string().min(1).optional().describe('PEM file of the private key of `cert`.'),
    keyPassphrase: secretSchema.optional().describe('Passphrase of an encrypted `key`: `{ env: NAME }` or `{ file: PATH }`.'),
    servername: z.string().min(1).optional().describe("Host name to verify the server's certificate against, when it differs from the address dialled."),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'cert and key go together (mutual TLS)' });

export type TlsConfig = z.infer<typeof tlsSchema>;

/** The PEM material, read. */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
  servername?: string;
}

function readPem(file: string, field: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new FramewireError('SECRET_UNREADABLE', 'config', `${field}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads the files of a TLS block; `field` (e.g. `kafka.ssl`) names it in errors. */
export function readTls(c: TlsConfig, field: string, env: NodeJS.ProcessEnv = process.env): TlsMaterial {
  const m: TlsMaterial = {};
  if (c.ca) m.ca = readPem(c.ca, `${field}.ca`);
  if (c.cert) m.cert = readPem(c.cert, `${field}.cert`);
  if (c.key) m.key = readPem(c.key, `${field}.key`);
  if (c.keyPassphrase) m.passphrase = readSecret(c.keyPassphrase, `${field}.keyPassphrase`, env);
  if (c.servername) m.servername = c.servername;
  return m;
}
