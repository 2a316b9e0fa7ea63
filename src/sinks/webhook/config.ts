import { z } from 'zod/v4';

export const webhookSinkSchema = z
  .strictObject({
    type: z.literal('webhook'),
    url: z.url({ protocol: /^https?$/ }).describe('Where each alert record is POSTed (JSON body).'),
    secret: z.string().min(1).optional().describe('When set, each request carries `X-Framewire-Signature: sha256=<hex HMAC-SHA256 of the body>` with this key.'),
    timeoutMs: z.int().min(1).default(5000).describe('A request not answered within this long counts as failed, ms.'),
    maxAttempts: z.int().min(1).default(20).describe('Attempts per alert before it is dropped (counted); backoff doubles from `backoffMs` to `maxBackoffMs` with full jitter.'),
    backoffMs: z.int().min(1).default(200).describe('First retry delay, ms.'),
    maxBackoffMs: z.int().min(1).default(10_000).describe('Longest retry delay, ms.'),
    queueSize: z.int().min(1).default(1000).describe('Alerts waiting to be sent; when full the oldest is dropped (counted).'),
  })
  .describe('POSTs each alert record to an HTTP endpoint, in order, with retries; never slows the pipeline (docs/contracts.md "Webhook").');

export type WebhookSinkConfig = z.infer<typeof webhookSinkSchema>;
