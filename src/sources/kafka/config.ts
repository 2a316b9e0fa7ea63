import { z } from 'zod/v4';

export const kafkaSourceSchema = z
  .strictObject({
    type: z.literal('kafka'),
    topic: z.string().min(1).default('video.chunks').describe('Topic of encoded video chunks (docs/contracts.md).'),
    group: z
      .string()
      .min(1)
      .default('framewire')
      .describe('Consumer group id; offsets and resume points are committed under it. Processors with the same group share the partitions (scale-out: README, "Scale-out").'),
    partitions: z
      .int()
      .min(1)
      .default(3)
      .describe(
        'Partitions to create the topic with when it is missing. They bound the scale-out: a processor beyond the partition count idles, and a stream (its key) always stays in one partition. Plan at least 2× the most processors you will run, and 4 × cameras ÷ streams per processor (a partition should fit in a quarter of a processor, so a failed one\'s partitions can spread; README, "Scale-out"), rounded to a number with many divisors (12, 24, 48); each stream of a partition adds ~120 bytes to its commit metadata (broker offset.metadata.max.bytes). Changing the count later moves streams between partitions.',
      ),
    dlqTopic: z.string().min(1).default('video.dlq').describe('Dead-letter topic for records that cannot be used.'),
    fromBeginning: z.boolean().default(true).describe('Where a new consumer group starts: the earliest chunk (true) or new ones only.'),
    commitIntervalMs: z.int().min(50).default(500).describe('How often safe offsets (and resume points) are committed, ms.'),
    // Consumer-group timing. A SIGKILLed member's partitions move once the broker stops hearing
    // from it: sessionTimeoutMs, then one heartbeat for the others to rejoin.
    sessionTimeoutMs: z
      .int()
      .min(1000)
      .default(6000)
      .describe(
        "Consumer-group session timeout, ms: a member silent this long (crashed, SIGKILLed) loses its partitions to the others. 6000 is the broker's default group.min.session.timeout.ms, the lowest it accepts.",
      ),
    heartbeatIntervalMs: z
      .int()
      .min(100)
      .default(500)
      .describe('How often a member heartbeats, ms; also how soon the others notice a rebalance and rejoin (cheap: one small request). At most a third of sessionTimeoutMs.'),
    rebalanceTimeoutMs: z
      .int()
      .min(1000)
      .default(15_000)
      .describe('How long the broker waits for every member to rejoin in a rebalance, ms; a member slower than this is dropped from the group (all partitions stall until then).'),
    fetchMaxWaitMs: z
      .int()
      .min(10)
      .default(500)
      .describe('Longest a fetch waits for new chunks, ms. A member learns of a rebalance between fetches, so this bounds the stall of idle partitions too.'),
  })
  .refine((c) => c.heartbeatIntervalMs * 3 <= c.sessionTimeoutMs, { message: 'heartbeatIntervalMs must be at most a third of sessionTimeoutMs', path: ['heartbeatIntervalMs'] })
  .describe('Consumes video chunks from Kafka, validates their headers and hands them to the decoders.');

export type KafkaSourceConfig = z.infer<typeof kafkaSourceSchema>;
