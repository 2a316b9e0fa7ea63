import { z } from 'zod/v4';

export const healthSchema = z
  .strictObject({
    staleMs: z.int().min(100).default(5000).describe('A stream whose session is open is `stalled` when no chunk arrived for this long, ms (a `stream` event; stale alert rules count from it).'),
    retentionMs: z.int().min(0).default(60_000).describe('A stream whose session ended is forgotten (dashboard, stats) after this long, ms.'),
  })
  .describe('Stream health: `stream` events (started, stalled, resumed, ended) and the per-stream figures of the dashboard.');

export type HealthConfig = z.infer<typeof healthSchema>;
