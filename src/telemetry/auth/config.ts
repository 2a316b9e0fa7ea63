import { z } from 'zod/v4';
import { secretSchema } from '../../config/secret.js';
import { regexField } from '../../config/regex.js';

export const httpTokenSchema = z
  .strictObject({
    name: z.string().min(1).describe('Who holds the token (logs, never the secret).'),
    secret: secretSchema.describe('Where the token comes from: `{ env: NAME }` or `{ file: PATH }`; never inline.'),
    streams: regexField('Regular expression of the stream ids this token may see; its clients receive nothing else and cannot subscribe to anything else. Default: every stream.').optional(),
  })
  .describe('A bearer token accepted by the WebSocket and the dashboard.');

export const httpAuthSchema = z
  .strictObject({
    tokens: z.array(httpTokenSchema).default([]).describe('Bearer tokens; when any is set, the WebSocket and the dashboard (`/`) need one (Authorization header, `?token=` or the `framewire.bearer.<token>` subprotocol; docs/contracts.md). Empty: open.'),
    protectMetrics: z.boolean().default(false).describe('Also require a token on /metrics.'),
    protectHealth: z.boolean().default(false).describe('Also require a token on /healthz and /readyz.'),
  })
  .describe('Access control of the HTTP endpoints.');

export type HttpAuthConfig = z.infer<typeof httpAuthSchema>;
