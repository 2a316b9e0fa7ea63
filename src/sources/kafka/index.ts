import { CHUNK_TOPIC_MAX_MESSAGE_BYTES } from '../../core/ack.js';
import type { SourceComponent } from '../../core/component.js';
import { kafkaSourceSchema } from './config.js';
import { KafkaSource } from './source.js';

export const kafkaSource: SourceComponent<typeof kafkaSourceSchema> = {
  type: 'kafka',
  schema: kafkaSourceSchema,
  topics: (c) => [
    { topic: c.topic, numPartitions: c.partitions, configEntries: [{ name: 'max.message.bytes', value: String(CHUNK_TOPIC_MAX_MESSAGE_BYTES) }] },
    { topic: c.dlqTopic, numPartitions: c.partitions },
  ],
  messaging: (c) => ({ destination: c.topic, group: c.group }),
  build: async (ctx, c) => new KafkaSource(ctx.kafka.client(), await ctx.kafka.admin(), await ctx.kafka.producer(), c, ctx.decode, ctx.metrics, ctx.signal),
};
