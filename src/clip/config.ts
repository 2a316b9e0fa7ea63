/** Alert snapshots (`snapshots:` in the topology; docs/contracts.md "Snapshots"). */
import { z } from 'zod/v4';

export const snapshotsSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Make a JPEG of each firing alert's `atFrame`, decoded again from the chunk topic (one short-lived ffmpeg per alert, nothing per frame), for the Kafka sinks' `snapshotsTopic` and webhooks with `includeSnapshot`."),
    maxWidth: z.int().min(16).default(640).describe("Widest snapshot, px: the stream's own size, scaled down (aspect kept) when wider."),
    quality: z.int().min(2).max(31).default(4).describe("JPEG quantiser (ffmpeg mjpeg `-q:v`): 2 best, 31 smallest."),
    queueSize: z.int().min(1).default(16).describe('Firing alerts waiting for their snapshot (one is made at a time); beyond, a firing alert gets none (counted as `skipped`).'),
    timeoutMs: z.int().min(100).default(15_000).describe('A snapshot not made within this long (reading its chunks, then decoding) counts as failed, ms.'),
  })
  .describe("JPEG snapshots of firing alerts, made off the data path: they never delay labels, alerts or commits.");

export type SnapshotsConfig = z.infer<typeof snapshotsSchema>;
