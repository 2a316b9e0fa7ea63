import type { SinkComponent } from '../../core/component.js';
import { websocketSinkSchema } from './config.js';
import { WebSocketSink } from './server.js';

export const websocketSink: SinkComponent<typeof websocketSinkSchema> = {
  type: 'websocket',
  schema: websocketSinkSchema,
  build: async (ctx, c) => {
    const sink = new WebSocketSink(c, ctx.metrics);
    ctx.http.upgrade(c.path, (req, socket, head, principal) => sink.handleUpgrade(req, socket, head, principal));
    return sink;
  },
};
