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
    includeSnapshot: z.boolean().default(false).describe("A firing alert's POST carries its JPEG snapshot (top-level `snapshots`) as `snapshot: {contentType, width, height, frame, jpeg (base64)}`, waiting for it up to `snapshotWaitMs`; without one, `snapshotMissing` says why (docs/contracts.md \"Webhook\")."),
    snapshotWaitMs: z.int().min(0).default(5000).describe('With `includeSnapshot`: how long after a firing alert is published its POST waits for the snapshot, ms (later alerts wait behind it, in order).'),
    queueSize: z.int().min(1).default(1000).describe('Alerts waiting to be sent; when full the oldest is dropped (counted).'),
  })
  .describe('POSTs each alert record to an HTTP endpoint, in order, with retries; never slows the pipeline (docs/contracts.md "Webhook").');

export type WebhookSinkConfig = z.infer<typeof webhookSinkSchema>;
