/**
 * The topology file's schema, composed from each component's own schema. The config reference
 * (docs/config.md) and JSON Schema (docs/topology.schema.json) are generated from it
 * (`npm run docs`), and a test fails when they drift.
 */
import { z } from 'zod/v4';
import { kafkaSourceSchema } from '../sources/kafka/config.js';
import { ffmpegDecodeSchema } from '../decode/ffmpeg/config.js';
import { batchSchema } from '../batch/config.js';
import { tritonSchema } from '../infer/triton/config.js';
import { kafkaSinkSchema } from '../sinks/kafka/config.js';
import { websocketSinkSchema } from '../sinks/websocket/config.js';
import { samplingRuleSchema } from '../decode/sampling.js';
import { smoothingSchema } from '../postprocess/smoothing.js';
import { httpAuthSchema } from '../telemetry/auth/config.js';
import { kafkaSaslSchema, kafkaSslSchema } from './kafka-security.js';

export const modelSchema = z
  .strictObject({
    name: z.string().min(1).describe("Model name in Triton's repository."),
    topK: z.int().min(1).default(3).describe('Labels per frame, highest score first.'),
    streams: z.string().optional().describe('Regular expression of stream ids routed to this model; the first matching model wins; default: every stream.'),
    clip: z
      .strictObject({
        frames: z.int().min(1).optional().describe("Frames per window; only needed when the model's time axis is variable (otherwise it must match the model's)."),
        stride: z.int().min(1).optional().describe('Frames between the starts of consecutive windows; default: the window length (windows do not overlap). Above the window length, the frames between windows are reported `sampled`.'),
      })
      .optional()
      .describe("Sliding windows for a clip model (input [time, height, width, 3]): each window of frames becomes one input, and its labels are published for each frame of the window no earlier window labelled. Only for models with a time axis."),
  })
  .describe('A classification model served by Triton.');

export const topologySchema = z
  .strictObject({
    name: z.string().min(1).default('framewire').describe('Name of this pipeline (client ids, logs).'),
    kafka: z
      .strictObject({
        brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:9092']).describe('Bootstrap brokers, host:port.'),
        clientId: z.string().min(1).default('framewire').describe('Kafka client id.'),
        ssl: kafkaSslSchema.optional(),
        sasl: kafkaSaslSchema.optional(),
      })
      .prefault({})
      .describe('The Kafka cluster shared by sources and sinks.'),
    http: z
      .strictObject({
        listen: z.string().regex(/^[^:]+:\d+$/, 'expected host:port').default('127.0.0.1:8080').describe('Address of /metrics, /healthz, /readyz and the WebSocket.'),
        auth: httpAuthSchema.prefault({}),
      })
      .prefault({})
      .describe('The processor HTTP endpoints.'),
    latency: z
      .strictObject({
        budgetMs: z.int().min(1).default(250).describe("Per-frame latency budget: a frame's deadline is its capture time plus this."),
        streams: z
          .array(
            z.strictObject({
              streams: z.string().describe('Regular expression of stream ids.'),
              budgetMs: z.int().min(1).describe('Budget for those streams, ms.'),
            }),
          )
          .default([])
          .describe('Per-stream budget overrides; the first matching entry wins.'),
      })
      .prefault({})
      .describe('Latency promises.'),
    sources: z.array(z.discriminatedUnion('type', [kafkaSourceSchema])).min(1).describe('Where encoded video comes from.'),
    decode: ffmpegDecodeSchema.prefault({}),
    sampling: z.array(samplingRuleSchema).default([]).describe('Which decoded frames are classified, per stream; the first matching rule wins; default: every frame.'),
    batch: batchSchema.prefault({}),
    triton: tritonSchema.prefault({}),
    models: z.array(modelSchema).min(1).describe('Models frames are classified with.'),
    smoothing: smoothingSchema.prefault({}),
    sinks: z.array(z.discriminatedUnion('type', [kafkaSinkSchema, websocketSinkSchema])).min(1).describe('Where labels and events go.'),
    shutdown: z
      .strictObject({
        drainTimeoutMs: z.int().min(0).default(10_000).describe('On SIGTERM: stop intake, then let in-flight frames finish for at most this long.'),
      })
      .prefault({})
      .describe('Two-phase shutdown.'),
  })
  .describe('A framewire pipeline: sources → decode → batch → infer → sinks.');

export type Topology = z.infer<typeof topologySchema>;
export type ModelConfig = z.infer<typeof modelSchema>;
