/**
 * Every metric framewire exports, in one place. Names carry the `framewire_` prefix and their
 * unit; labels are bounded (model, reason, stage — never a stream id).
 */
import client from 'prom-client';

export const METRIC = {
  chunksReceived: 'framewire_chunks_received_total',
  chunksDeadLettered: 'framewire_chunks_dead_lettered_total',
  framesDecoded: 'framewire_frames_decoded_total',
  framesInferred: 'framewire_frames_inferred_total',
  framesPublished: 'framewire_frames_published_total',
  framesDropped: 'framewire_frames_dropped_total',
  framesDuplicateSkipped: 'framewire_frames_resume_skipped_total',
  decoderRestarts: 'framewire_decoder_restarts_total',
  decoderKills: 'framewire_decoder_kills_total',
  streamsQuarantined: 'framewire_streams_quarantined_total',
  loadSheds: 'framewire_load_sheds_total',
  framesShed: 'framewire_frames_shed_total',
  catchUps: 'framewire_catch_ups_total',
  framesDegraded: 'framewire_frames_degraded_total',
  degradeChanges: 'framewire_degrade_changes_total',
  degradedStreams: 'framewire_degraded_streams',
  degradeShare: 'framewire_degrade_rate_share',
  degradeLoad: 'framewire_degrade_load',
  degradeDecodeLoad: 'framewire_degrade_decode_load',
  degradeInferLoad: 'framewire_degrade_infer_load',
  degradeCores: 'framewire_degrade_cores',
  laneCapacity: 'framewire_lane_capacity_frames_per_second',
  decodeCpuPerFrame: 'framewire_decode_cpu_ms_per_frame',
  streamsFps: 'framewire_streams_frames_per_second',
  degradeFullLoad: 'framewire_degrade_full_load',
  processCpuPerFrame: 'framewire_process_cpu_ms_per_frame',
  decodersActive: 'framewire_decoders_active',
  batchSize: 'framewire_batch_size_frames',
  shadowFrames: 'framewire_shadow_frames_total',
  shadowInferSeconds: 'framewire_shadow_infer_seconds',
  shadowAgreement: 'framewire_shadow_agreement',
  shadowScoreDelta: 'framewire_shadow_score_delta',
  shadowPromotions: 'framewire_shadow_promotions_total',
  inferSeconds: 'framewire_triton_request_seconds',
  inferErrors: 'framewire_triton_errors_total',
  tritonQueueSeconds: 'framewire_triton_queue_seconds',
  tritonComputeInputSeconds: 'framewire_triton_compute_input_seconds',
  tritonComputeInferSeconds: 'framewire_triton_compute_infer_seconds',
  tritonComputeOutputSeconds: 'framewire_triton_compute_output_seconds',
  tritonServerRequests: 'framewire_triton_server_requests_total',
  tritonEndpointReady: 'framewire_triton_endpoint_ready',
  tritonTransport: 'framewire_triton_transport',
  captureToPublish: 'framewire_capture_to_publish_seconds',
  queueFrames: 'framewire_queue_frames',
  wsClients: 'framewire_websocket_clients',
  wsSkipped: 'framewire_websocket_messages_skipped_total',
  wsRejected: 'framewire_websocket_rejected_total',
  wsBufferedBytes: 'framewire_websocket_buffered_bytes',
  httpRejected: 'framewire_http_requests_rejected_total',
  commits: 'framewire_offset_commits_total',
  rebalances: 'framewire_consumer_rebalances_total',
  partitionsAssigned: 'framewire_partitions_assigned',
  stageSeconds: 'framewire_stage_seconds',
  changeEvents: 'framewire_change_events_total',
  streamEvents: 'framewire_stream_events_total',
  alerts: 'framewire_alerts_total',
  alertsDropped: 'framewire_alerts_dropped_total',
  webhookSent: 'framewire_webhook_sent_total',
  webhookErrors: 'framewire_webhook_errors_total',
  webhookDropped: 'framewire_webhook_dropped_total',
  webhookQueue: 'framewire_webhook_queue_alerts',
  thumbnails: 'framewire_thumbnails_total',
  thumbnailSeconds: 'framewire_thumbnail_encode_seconds_total',
  snapshots: 'framewire_snapshots_total',
  snapshotQueue: 'framewire_snapshot_queue_alerts',
  snapshotSeconds: 'framewire_snapshot_seconds',
  snapshotCpuSeconds: 'framewire_snapshot_cpu_seconds_total',
} as const;

export class Metrics {
  readonly registry = new client.Registry();
  readonly chunksReceived = new client.Counter({ name: METRIC.chunksReceived, help: 'Video chunks consumed from Kafka.', registers: [this.registry] });
  readonly chunksDeadLettered = new client.Counter({ name: METRIC.chunksDeadLettered, help: 'Chunks copied to the dead-letter topic, by reason.', labelNames: ['reason'], registers: [this.registry] });
  readonly framesDecoded = new client.Counter({ name: METRIC.framesDecoded, help: 'Frames decoded by ffmpeg.', labelNames: ['model'], registers: [this.registry] });
  readonly framesInferred = new client.Counter({ name: METRIC.framesInferred, help: 'Frames classified by Triton.', labelNames: ['model'], registers: [this.registry] });
  readonly framesPublished = new client.Counter({ name: METRIC.framesPublished, help: 'Label records published.', labelNames: ['model'], registers: [this.registry] });
  readonly framesDropped = new client.Counter({ name: METRIC.framesDropped, help: 'Decoded frames not labelled, by reason.', labelNames: ['reason'], registers: [this.registry] });
  readonly framesResumeSkipped = new client.Counter({ name: METRIC.framesDuplicateSkipped, help: 'Frames re-decoded after a restart that were already finished before it.', registers: [this.registry] });
  readonly loadSheds = new client.Counter({ name: METRIC.loadSheds, help: 'Times a stream fell behind its budget (live mode: frames arriving stale, or its decoder a budget behind) and skipped ahead to a fresh keyframe.', registers: [this.registry] });
  readonly catchUps = new client.Counter({ name: METRIC.catchUps, help: 'Times a stream fell behind its budget and was decoded without classifying (its frames dropped as deadline) to catch up, instead of skipping ahead to a keyframe.', registers: [this.registry] });
  readonly framesDegraded = new client.Counter({ name: METRIC.framesDegraded, help: "Frames skipped because their stream's rate was lowered under load (reported as sampled, degraded), by priority.", labelNames: ['priority'], registers: [this.registry] });
  readonly degradeChanges = new client.Counter({ name: METRIC.degradeChanges, help: "Streams' sampling rate changes announced as degraded events, by priority and direction (down, up: restoring).", labelNames: ['priority', 'direction'], registers: [this.registry] });
  readonly degradedStreams = new client.Gauge({ name: METRIC.degradedStreams, help: 'Streams running below their rate because of load, by priority.', labelNames: ['priority'], registers: [this.registry] });
  readonly degradeShare = new client.Gauge({ name: METRIC.degradeShare, help: "Mean share of their frames the class's active streams have classified under degradation (1: full rate), by priority.", labelNames: ['priority'], registers: [this.registry] });
  readonly degradeLoad = new client.Gauge({ name: METRIC.degradeLoad, help: 'Estimated load of the machine the degrade controller acts on (decode + inference + backlog, 1 = all of it).', registers: [this.registry] });
  readonly degradeDecodeLoad = new client.Gauge({ name: METRIC.degradeDecodeLoad, help: "Decoding's part of framewire_degrade_load.", registers: [this.registry] });
  readonly degradeInferLoad = new client.Gauge({ name: METRIC.degradeInferLoad, help: "Inference's part of framewire_degrade_load (frames kept against the lanes' capacity).", registers: [this.registry] });
  readonly degradeCores = new client.Gauge({ name: METRIC.degradeCores, help: 'Cores decoding is spread over in the load estimate.', registers: [this.registry] });
  readonly laneCapacity = new client.Gauge({ name: METRIC.laneCapacity, help: "Frames a second a model lane can label at most (full batches at the latency estimator's service time), live mode.", labelNames: ['model'], registers: [this.registry] });
  readonly decodeCpuPerFrame = new client.Gauge({ name: METRIC.decodeCpuPerFrame, help: "Mean CPU time of the open sessions' decoders per frame, ms (live mode; framewire plan).", registers: [this.registry] });
  readonly degradeFullLoad = new client.Gauge({ name: METRIC.degradeFullLoad, help: 'The load estimate with every stream at its full rate (no degradation).', registers: [this.registry] });
  readonly processCpuPerFrame = new client.Gauge({ name: METRIC.processCpuPerFrame, help: "The processor's own CPU time (node: demuxing, batching, publishing) per frame coming in, ms, over the last tick (live mode; framewire plan).", registers: [this.registry] });
  readonly streamsFps = new client.Gauge({ name: METRIC.streamsFps, help: 'Frames a second the open sessions send together, as measured from their timestamps (live mode).', registers: [this.registry] });
  readonly framesShed = new client.Counter({ name: METRIC.framesShed, help: 'Frames skipped without decoding while their stream was behind its budget (reported as overload).', registers: [this.registry] });
  readonly decoderRestarts = new client.Counter({ name: METRIC.decoderRestarts, help: 'Decoders that exited unexpectedly and were restarted.', registers: [this.registry] });
  readonly decoderKills = new client.Counter({ name: METRIC.decoderKills, help: 'Decoders killed by the watchdog, by reason (stalled: fed but silent for decode.stallMs; cpu: over decode.maxCpuPercent).', labelNames: ['reason'], registers: [this.registry] });
  readonly streamsQuarantined = new client.Counter({ name: METRIC.streamsQuarantined, help: 'Times a stream was quarantined for crashing its decoder too often (decode.quarantineCrashes).', registers: [this.registry] });
  readonly decodersActive = new client.Gauge({ name: METRIC.decodersActive, help: 'Running ffmpeg decoders.', registers: [this.registry] });
  readonly batchSize = new client.Histogram({ name: METRIC.batchSize, help: 'Frames per inference request.', labelNames: ['model'], buckets: [1, 2, 4, 8, 16, 32, 64], registers: [this.registry] });
  readonly shadowFrames = new client.Counter({ name: METRIC.shadowFrames, help: "Frames of a lane's sampled batches and what became of them with its shadow model: compared, skipped (under load: shadow requests go first), failed.", labelNames: ['model', 'outcome'], registers: [this.registry] });
  readonly shadowInferSeconds = new client.Histogram({ name: METRIC.shadowInferSeconds, help: 'Shadow model request latency.', labelNames: ['model'], buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2], registers: [this.registry] });
  readonly shadowAgreement = new client.Gauge({ name: METRIC.shadowAgreement, help: "Top-1 agreement of a lane's shadow with its primary over the report's window (0-1).", labelNames: ['model', 'shadow'], registers: [this.registry] });
  readonly shadowPromotions = new client.Counter({ name: METRIC.shadowPromotions, help: 'Shadow models a lane promoted by itself (`shadow.promoteWhen` met), by the model promoted and the one it replaced.', labelNames: ['model', 'from'], registers: [this.registry] });
  readonly shadowScoreDelta = new client.Gauge({ name: METRIC.shadowScoreDelta, help: "Mean |primary score - shadow score| of the primary's top label over the report's window.", labelNames: ['model', 'shadow'], registers: [this.registry] });
  readonly inferSeconds = new client.Histogram({ name: METRIC.inferSeconds, help: 'Triton ModelInfer latency seen by the client.', labelNames: ['model'], buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2], registers: [this.registry] });
  readonly inferErrors = new client.Counter({ name: METRIC.inferErrors, help: 'Failed Triton requests, by error code.', labelNames: ['code'], registers: [this.registry] });
  // Server-side time per request from Triton's model statistics, mean over the last poll interval.
  readonly tritonQueueSeconds = new client.Gauge({ name: METRIC.tritonQueueSeconds, help: "Mean time a request waited in Triton's queue during the last statistics interval.", labelNames: ['model'], registers: [this.registry] });
  readonly tritonComputeInputSeconds = new client.Gauge({ name: METRIC.tritonComputeInputSeconds, help: 'Mean time Triton spent preparing a request\'s inputs during the last statistics interval.', labelNames: ['model'], registers: [this.registry] });
  readonly tritonComputeInferSeconds = new client.Gauge({ name: METRIC.tritonComputeInferSeconds, help: 'Mean model execution time per request during the last statistics interval.', labelNames: ['model'], registers: [this.registry] });
  readonly tritonComputeOutputSeconds = new client.Gauge({ name: METRIC.tritonComputeOutputSeconds, help: 'Mean time Triton spent producing a request\'s outputs during the last statistics interval.', labelNames: ['model'], registers: [this.registry] });
  readonly tritonServerRequests = new client.Counter({ name: METRIC.tritonServerRequests, help: "Successful requests by Triton's own statistics (all clients of the model).", labelNames: ['model'], registers: [this.registry] });
  readonly tritonEndpointReady = new client.Gauge({ name: METRIC.tritonEndpointReady, help: 'Whether a configured Triton endpoint takes requests (1) or is out of rotation (0).', labelNames: ['endpoint'], registers: [this.registry] });
  readonly tritonTransport = new client.Gauge({ name: METRIC.tritonTransport, help: 'Tensor transport in use per Triton endpoint: 1 for the active one (grpc or shm).', labelNames: ['endpoint', 'transport'], registers: [this.registry] });
  readonly captureToPublish = new client.Histogram({ name: METRIC.captureToPublish, help: 'Frame capture time to label published.', labelNames: ['model'], buckets: [0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1, 2, 5], registers: [this.registry] });
  readonly queueFrames = new client.Gauge({ name: METRIC.queueFrames, help: 'Frames waiting for a batch, per model.', labelNames: ['model'], registers: [this.registry] });
  readonly wsClients = new client.Gauge({ name: METRIC.wsClients, help: 'Connected WebSocket clients.', registers: [this.registry] });
  readonly wsSkipped = new client.Counter({ name: METRIC.wsSkipped, help: 'Messages not sent to a slow WebSocket client.', registers: [this.registry] });
  readonly wsRejected = new client.Counter({ name: METRIC.wsRejected, help: 'WebSocket connections refused and client messages refused, by reason (unauthorized, forbidden, origin, full, rate-limited, too-large, slow).', labelNames: ['reason'], registers: [this.registry] });
  readonly wsBufferedBytes = new client.Gauge({ name: METRIC.wsBufferedBytes, help: 'Bytes queued in this process for WebSocket clients (sampled every 0.5 s).', registers: [this.registry] });
  readonly httpRejected = new client.Counter({ name: METRIC.httpRejected, help: 'HTTP requests refused for want of a valid bearer token.', labelNames: ['reason'], registers: [this.registry] });
  readonly stageSeconds = new client.Histogram({ name: METRIC.stageSeconds, help: 'Where the budget goes, per frame: capture_to_decoded (camera, Kafka, ffmpeg), decode (frame fed to its decoder → out of it), queued (waiting for a batch), publish (label delivery).', labelNames: ['stage'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2], registers: [this.registry] });
  readonly changeEvents = new client.Counter({ name: METRIC.changeEvents, help: 'Smoothed label changes reported as change events.', registers: [this.registry] });
  readonly streamEvents = new client.Counter({ name: METRIC.streamEvents, help: 'Stream health events (started, stalled, resumed, ended), by state.', labelNames: ['state'], registers: [this.registry] });
  readonly alerts = new client.Counter({ name: METRIC.alerts, help: 'Alert records (firing, resolved) produced by the alert rules, by state.', labelNames: ['state'], registers: [this.registry] });
  readonly alertsDropped = new client.Counter({ name: METRIC.alertsDropped, help: 'Alert records not delivered to a sink because its backlog was full.', labelNames: ['sink'], registers: [this.registry] });
  readonly webhookSent = new client.Counter({ name: METRIC.webhookSent, help: 'Alert records delivered by webhook (2xx answer).', registers: [this.registry] });
  readonly webhookErrors = new client.Counter({ name: METRIC.webhookErrors, help: 'Failed webhook requests (each attempt).', registers: [this.registry] });
  readonly webhookDropped = new client.Counter({ name: METRIC.webhookDropped, help: 'Alert records the webhook sink gave up on, by reason (queue-full, retries, rejected, shutdown).', labelNames: ['reason'], registers: [this.registry] });
  readonly webhookQueue = new client.Gauge({ name: METRIC.webhookQueue, help: 'Alert records waiting in the webhook queue.', registers: [this.registry] });
  readonly thumbnails = new client.Counter({ name: METRIC.thumbnails, help: 'JPEG thumbnails made for dashboards (only while one subscribes).', registers: [this.registry] });
  readonly thumbnailSeconds = new client.Counter({ name: METRIC.thumbnailSeconds, help: 'CPU time of the process while it downscaled and JPEG-encoded thumbnails.', registers: [this.registry] });
  readonly snapshots = new client.Counter({ name: METRIC.snapshots, help: 'Firing alerts by what became of their JPEG snapshot: made, failed (chunks gone, decode failed; logged), skipped (the snapshot queue was full).', labelNames: ['outcome'], registers: [this.registry] });
  readonly snapshotQueue = new client.Gauge({ name: METRIC.snapshotQueue, help: 'Firing alerts waiting for their snapshot (one is made at a time).', registers: [this.registry] });
  readonly snapshotSeconds = new client.Histogram({ name: METRIC.snapshotSeconds, help: 'Firing alert published to its snapshot published (chunks read back, decoded, encoded).', buckets: [0.1, 0.2, 0.5, 1, 2, 3, 5, 10, 20], registers: [this.registry] });
  readonly snapshotCpuSeconds = new client.Counter({ name: METRIC.snapshotCpuSeconds, help: "CPU time of the ffmpeg children that decoded and encoded snapshots (their own count).", registers: [this.registry] });
  readonly commits = new client.Counter({ name: METRIC.commits, help: 'Offset commits.', registers: [this.registry] });
  readonly rebalances = new client.Counter({ name: METRIC.rebalances, help: 'Consumer-group rebalances this member took part in (every member stops fetching meanwhile).', registers: [this.registry] });
  readonly partitionsAssigned = new client.Gauge({ name: METRIC.partitionsAssigned, help: 'Chunk-topic partitions assigned to this member.', registers: [this.registry] });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'framewire_' });
  }
}
