import { z } from 'zod/v4';

export const kafkaSinkSchema = z
  .strictObject({
    type: z.literal('kafka'),
    topic: z.string().min(1).default('video.labels').describe('Topic of label records, one per classified frame.'),
    eventsTopic: z.string().min(1).default('video.events').describe('Topic of events (dropped frames, label changes).'),
    alertsTopic: z.string().min(1).default('video.alerts').describe('Topic of alert records (firing, resolved) from the `alerts` rules.'),
    snapshotsTopic: z.string().min(1).default('video.snapshots').describe("Topic of alert snapshots: a JPEG of each firing alert's `atFrame` (top-level `snapshots`), keyed by alert id."),
    partitions: z.int().min(1).default(3).describe('Partitions to create the topics with when missing.'),
  })
  .describe('Publishes label records, events, alerts and alert snapshots to Kafka (idempotent producer, acks from all replicas).');

export type KafkaSinkConfig = z.infer<typeof kafkaSinkSchema>;
