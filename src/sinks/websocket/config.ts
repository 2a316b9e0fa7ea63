import { z } from 'zod/v4';

export const websocketSinkSchema = z
  .strictObject({
    type: z.literal('websocket'),
    path: z.string().startsWith('/').default('/ws').describe('Path of the WebSocket endpoint on the HTTP listener.'),
    maxBufferedBytes: z.int().min(1024).default(1 << 20).describe('A client with more unsent bytes than this is skipped (its messages are not sent); past 4x it is disconnected.'),
    slowClientTimeoutMs: z.int().min(100).default(10_000).describe('A client skipped for this long without catching up is disconnected, so one that never reads holds neither memory nor a place for long.'),
    maxClients: z.int().min(1).default(1000).describe('Connections beyond this many are refused (HTTP 503).'),
    allowedOrigins: z.array(z.string().min(1)).default([]).describe('Origins (scheme://host[:port]) whose browser pages may connect; a request with another Origin header is refused (403). Empty: any. Clients that send no Origin (not browsers) are not affected.'),
    maxMessageBytes: z.int().min(64).default(16 * 1024).describe('Largest message a client may send; a larger one closes its connection (1009).'),
    subscribeRatePerSec: z.number().positive().default(5).describe('Subscribe messages a client may send per second on average.'),
    subscribeBurst: z.int().min(1).default(20).describe('Subscribe messages a client may send at once; past the rate, messages are refused with an error, and a client refused this many times in a row is disconnected (1008).'),
  })
  .describe('Sends labels and events to WebSocket subscribers (dashboards, alerting).');

export type WebsocketSinkConfig = z.infer<typeof websocketSinkSchema>;
