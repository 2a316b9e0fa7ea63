/** A consumer group's lag on one topic: what the Kafka source reports as its ConsumerLag (core/source.ts). */
import type { Admin } from 'kafkajs';

/**
 * Committed offsets against the partitions' ends, summed; a partition the group never committed
 * counts all it holds. Rejects when the broker cannot be asked.
 */
export async function groupLag(admin: Pick<Admin, 'fetchOffsets' | 'fetchTopicOffsets'>, group: string, topic: string): Promise<number> {
  const [committed, ends] = await Promise.all([admin.fetchOffsets({ groupId: group, topics: [topic] }), admin.fetchTopicOffsets(topic)]);
  let lag = 0;
  for (const e of ends) {
    const c = Number(committed[0]?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
    lag += c < 0 ? Number(e.high) - Number(e.low) : Math.max(0, Number(e.high) - c);
  }
  return lag;
}
