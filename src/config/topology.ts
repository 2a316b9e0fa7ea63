/**
 * The topology file's schema, composed from each component's own schema: the `sources` and
 * `sinks` unions from the component registry (src/topology/registry.ts), the stages' sections
 * from their config modules. The config reference (docs/config.md) and JSON Schema
 * (docs/topology.schema.json) are generated from it (`npm run docs`); a test fails when they drift.
 */
import { z } from 'zod/v4';
import '../components.js';
import type { ComponentSchema } from '../core/component.js';
import { registry } from '../topology/registry.js';
import { decodeSchema } from '../decode/config.js';
import { batchSchema } from '../batch/config.js';
import { tritonSchema } from '../infer/triton/config.js';
import { samplingRuleSchema } from '../decode/sampling.js';
import { prioritySchema } from '../batch/degrade.js';
import { smoothingSchema } from '../postprocess/smoothing.js';
import { regexField } from './regex.js';
import { alertsSchema } from '../alerts/config.js';
import { snapshotsSchema } from '../clip/config.js';
import { healthSchema } from '../health/config.js';
import { httpAuthSchema } from '../telemetry/auth/config.js';
import { telemetrySchema } from '../telemetry/tracing.js';
import { kafkaSaslSchema, kafkaSslSchema } from '../kafka/security.js';

export const modelSchema = z
  .strictObject({
    name: z.string().min(1).describe("Model name in Triton's repository."),
    version: z
      .int()
      .min(1)
      .optional()
      .describe("Model version requests ask Triton for (label records carry it as `modelVersion`); default: none, Triton's version policy picks (the latest it has loaded). Name and version can be switched on a running pipeline by a reload (SIGHUP)."),
    topK: z.int().min(1).default(3).describe('Labels per frame, highest score first.'),
    streams: regexField('Regular expression of stream ids routed to this model; the first matching model wins; default: every stream.').optional(),
    clip: z
      .strictObject({
        frames: z.int().min(1).optional().describe("Frames per window; only needed when the model's time axis is variable (otherwise it must match the model's)."),
        stride: z.int().min(1).optional().describe('Frames between the starts of consecutive windows; default: the window length (windows do not overlap). Above the window length, the frames between windows are reported `sampled`.'),
      })
      .optional()
      .describe("Sliding windows for a clip model (input [time, height, width, 3]): each window of frames becomes one input, and its labels are published for each frame of the window no earlier window labelled. Only for models with a time axis."),
    shadow: z
      .strictObject({
        name: z.string().min(1).describe("The shadow model in Triton's repository; it must take the primary's input (datatype and size)."),
        version: z.int().min(1).optional().describe("Its version; default: Triton's version policy."),
        sample: z.number().gt(0).max(1).default(0.1).describe('Share of the primary\'s frames also sent to the shadow, in whole batches.'),
        window: z.int().min(10).default(5000).describe('Frames the agreement report covers (the latest).'),
        reportIntervalMs: z.int().min(100).default(10_000).describe('How often the report goes out as a `shadow` record on the events topic (and the WebSocket), ms.'),
        promoteWhen: z
          .strictObject({
            agreement: z.number().gt(0).max(1).describe('Top-1 agreement (0-1) the report must hold.'),
            frames: z.int().min(10).describe('Frames the report must hold it over (at most `window`).'),
          })
          .optional()
          .describe("Promotes the shadow by itself: once the agreement report covers at least `frames` compared frames with top-1 agreement at or above `agreement`, the lane swaps primary and shadow (as a reload would: between batches, every frame labelled once) and announces it as a `promotion` event. The old primary becomes the shadow, without `promoteWhen`, so the lanes never swap back by themselves. Without this field promotion stays manual (a reload)."),
      })
      .superRefine((sh, ctx) => {
        if (sh.promoteWhen && sh.promoteWhen.frames > sh.window) {
          ctx.addIssue({ code: 'custom', path: ['promoteWhen', 'frames'], message: `${sh.promoteWhen.frames} frames is more than the report's window (${sh.window}); the report never holds that many` });
        }
      })
      .optional()
      .describe("A shadow model: a sample of this model's batches also goes to it, with no effect on this model's labels, deadlines or commits; the processor keeps a rolling agreement report (`framewire shadow report`). Shadow requests are the first work dropped under load. Promotion is a reload with `name` and `shadow.name` swapped, or automatic with `promoteWhen`."),
  })
  .describe('A classification model served by Triton.');

/** A component entry as the rest of the topology sees it: its own schema checked it already. */
const componentEntry = z.looseObject({ type: z.string() });
type ComponentUnion = z.ZodType<z.infer<typeof componentEntry>>;

function composeTopology(sources: ComponentUnion, sinks: ComponentUnion) {
  return z
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
                streams: regexField('Regular expression of stream ids.'),
                budgetMs: z.int().min(1).describe('Budget for those streams, ms.'),
              }),
            )
            .default([])
            .describe('Per-stream budget overrides; the first matching entry wins.'),
        })
        .prefault({})
        .describe('Latency promises.'),
      sources: z.array(sources).min(1).describe('Where encoded video comes from; each source feeds the same decode stage.'),
      decode: decodeSchema.prefault({}),
      sampling: z.array(samplingRuleSchema).default([]).describe('Which decoded frames are classified, per stream; the first matching rule wins; default: every frame.'),
      priority: prioritySchema.prefault({}),
      batch: batchSchema.prefault({}),
      triton: tritonSchema.prefault({}),
      models: z.array(modelSchema).min(1).describe('Models frames are classified with.'),
      smoothing: smoothingSchema.prefault({}),
      health: healthSchema.prefault({}),
      alerts: alertsSchema,
      snapshots: snapshotsSchema.prefault({}),
      sinks: z.array(sinks).min(1).describe('Where labels, events and alerts go.'),
      accounting: z
        .strictObject({
          dropFlushMs: z
            .int()
            .min(1)
            .default(100)
            .describe('Consecutive dropped frames of a session with the same reason are merged into one `dropped` record for at most this long, ms: fewer records in a burst, still reported within a fraction of a second.'),
        })
        .prefault({})
        .describe('How frames that are not labelled are reported.'),
      startupTimeoutMs: z.int().min(100).default(30_000).describe('How long start-up waits for Kafka and Triton to become reachable before it fails (exit 1, STARTUP_TIMEOUT), ms.'),
      telemetry: telemetrySchema,
      shutdown: z
        .strictObject({
          drainTimeoutMs: z.int().min(0).default(10_000).describe('On SIGTERM: stop intake, then let in-flight frames finish for at most this long.'),
        })
        .prefault({})
        .describe('Two-phase shutdown.'),
    })
    .describe('A framewire pipeline: sources → decode → batch → infer → sinks.');
}

function union(components: Iterable<{ schema: ComponentSchema }>, kind: string): ComponentUnion {
  const schemas = [...components].map((c) => c.schema);
  if (schemas.length === 0) throw new Error(`no ${kind} types are registered`);
  return z.discriminatedUnion('type', schemas as [ComponentSchema, ...ComponentSchema[]]) as unknown as ComponentUnion;
}

const shape = composeTopology(componentEntry, componentEntry);
export type Topology = z.infer<typeof shape>;
/** One source or sink entry of a topology (its own component's schema has checked and defaulted it). */
export type ComponentConfig = z.infer<typeof componentEntry>;

let composed: { version: number; schema: typeof shape } | undefined;

/** The topology schema for the components registered now (rebuilt after a registration). */
export function topologySchema(): typeof shape {
  if (composed?.version !== registry.version) {
    composed = { version: registry.version, schema: composeTopology(union(registry.sources.values(), 'source'), union(registry.sinks.values(), 'sink')) };
  }
  return composed.schema;
}
export type ModelConfig = z.infer<typeof modelSchema>;
