import { z } from 'zod/v4';

export const kafkaSourceSchema = z
  .strictObject({
    type: z.literal('kafka'),
    topic: z.string().min(1).default('video.chunks').describe('Topic of encoded video chunks (docs/contracts.md).'),
    group: z.string().min(1).default('framewire').describe('Consumer group id; offsets and resume points are committed under it.'),
    partitions: z.int().min(1).default(3).describe('Partitions to create the topic with when it is missing.'),
    dlqTopic: z.string().min(1).default('video.dlq').describe('Dead-letter topic for records that cannot be used.'),
    fromBeginning: z.boolean().default(true).describe('Where a new consumer group starts: the earliest chunk (true) or new ones only.'),
    commitIntervalMs: z.int().min(50).default(500).describe('How often safe offsets (and resume points) are committed, ms.'),
  })
  .describe('Consumes video chunks from Kafka, validates their headers and hands them to the decoders.');

export type KafkaSourceConfig = z.infer<typeof kafkaSourceSchema>;
