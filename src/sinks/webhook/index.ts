/** The webhook sink component: its schema and its runtime (alert records only). */
export { webhookSinkSchema, type WebhookSinkConfig } from './config.js';
export { WebhookSink, signature, SIGNATURE_HEADER } from './sink.js';
