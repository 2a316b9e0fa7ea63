/** The webhook sink component (alert records only): its schema, runtime and registration. */
import type { SinkComponent } from '../../core/component.js';
import { webhookSinkSchema } from './config.js';
import { WebhookSink } from './sink.js';

export { webhookSinkSchema, type WebhookSinkConfig } from './config.js';
export { WebhookSink, signature, withSnapshot, SIGNATURE_HEADER } from './sink.js';

export const webhookSink: SinkComponent<typeof webhookSinkSchema> = {
  type: 'webhook',
  schema: webhookSinkSchema,
  build: async (ctx, c) => new WebhookSink(c, ctx.metrics, ctx.snapshots),
};
