import type { SinkComponent } from '../../core/component.js';
import { kafkaSinkSchema } from './config.js';
import { KafkaSink } from './sink.js';

export const kafkaSink: SinkComponent<typeof kafkaSinkSchema> = {
  type: 'kafka',
  schema: kafkaSinkSchema,
  topics: (c) => [
    { topic: c.topic, numPartitions: c.partitions },
    { topic: c.eventsTopic, numPartitions: c.partitions },
    { topic: c.alertsTopic, numPartitions: c.partitions },
    { topic: c.snapshotsTopic, numPartitions: c.partitions },
  ],
  messaging: (c) => ({ destination: c.topic }),
  build: async (ctx, c) => new KafkaSink(await ctx.kafka.producer(), c, ctx.kafka),
};
