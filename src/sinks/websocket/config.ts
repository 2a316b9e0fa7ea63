import { z } from 'zod/v4';

export const websocketSinkSchema = z
  .strictObject({
    type: z.literal('websocket'),
    path: z.string().startsWith('/').default('/ws').describe('Path of the WebSocket endpoint on the HTTP listener.'),
    maxBufferedBytes: z.int().min(1024).default(1 << 20).describe('A client with more unsent bytes than this is skipped; past 4x it is disconnected.'),
  })
  .describe('Sends labels and events to WebSocket subscribers (dashboards, alerting).');

export type WebsocketSinkConfig = z.infer<typeof websocketSinkSchema>;
