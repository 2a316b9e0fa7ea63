/** Topic creation shared by the processor's components and `framewire ingest`. */
import type { Admin } from 'kafkajs';
import type { TopicSpec } from '../core/component.js';

/**
 * Creates the topics that are missing (idempotent; another creator winning the race is not an
 * error). Listed first: creating an existing topic makes kafkajs log a protocol error.
 */
export async function ensureTopics(admin: Admin, topics: TopicSpec[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({ topics: missing.map((t) => ({ ...t, replicationFactor: -1 })), waitForLeaders: true });
  } catch (err) {
    if (!alreadyExists(err)) throw err;
  }
}

function alreadyExists(err: unknown): boolean {
  const e = err as { type?: string; errors?: { type?: string }[] };
  if (e?.type === 'TOPIC_ALREADY_EXISTS') return true;
  return Array.isArray(e?.errors) && e.errors.length > 0 && e.errors.every((x) => x?.type === 'TOPIC_ALREADY_EXISTS');
}
