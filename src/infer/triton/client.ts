/**
 * Typed client for Triton's gRPC `inference.GRPCInferenceService`, loaded at runtime from the
 * project's own proto/ definitions (wire-compatible with Triton's). Every call has a deadline;
 * failures become FramewireErrors whose `retriable` the caller's retry logic reads.
 *
 * Control calls and ModelStreamInfer go through grpc-js; ModelInfer, the one call per batch,
 * through unary.ts on its own HTTP/2 connection (cached request header + the caller's tensor
 * buffer, not copied), with the same status codes and errors.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { FramewireError } from '../../core/errors.js';
import { toInferError } from './errors.js';
import { InferStream, type DuplexCall } from './stream.js';
import { UnaryInfer } from './unary.js';
import type * as T from './types.js';
import type { TlsMaterial } from '../../config/tls.js';

export { toInferError };

/**
 * Deadline of a control call (health, metadata, repository, shared-memory registration), ms:
 * Triton answers these in a few ms when up; a server that does not within this is treated as
 * down for the call, not waited on.
 */
export const CONTROL_DEADLINE_MS = 5000;

const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../proto');

interface Loaded {
  ctor: grpc.ServiceClientConstructor;
  /** ModelInfer's protobuf codec (proto-loader's), for the lean unary path. */
  inferSerialize: (msg: unknown) => Buffer;
  inferDeserialize: (buf: Buffer) => unknown;
}

let loaded: Loaded | undefined;
function loadService(): Loaded {
  if (loaded) return loaded;
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'grpc_service.proto'), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_DIR],
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  const infer = (def['inference.GRPCInferenceService'] as protoLoader.ServiceDefinition).ModelInfer!;
  const l: Loaded = { ctor: pkg.inference.GRPCInferenceService, inferSerialize: (m) => infer.requestSerialize(m as object), inferDeserialize: (b) => infer.responseDeserialize(b) };
  loaded = l;
  return l;
}

export interface TritonClientOptions {
  /** host:port of Triton's gRPC endpoint. */
  url: string;
  /** Deadline for control calls (health, metadata, statistics), ms. */
  controlDeadlineMs?: number;
  /** TLS (CA, client certificate for mutual TLS, server name); default plaintext. */
  tls?: TlsMaterial;
}

/** One TLS context for both connections of a client (grpc-js's channel and the ModelInfer one). */
function secureContext(m: TlsMaterial): tls.SecureContext {
  return tls.createSecureContext({ ca: m.ca, cert: m.cert, key: m.key, passphrase: m.passphrase });
}

type Callback<R> = (err: grpc.ServiceError | null, res?: R) => void;
type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<unknown>) => grpc.ClientUnaryCall;

export class TritonClient {
  readonly url: string;
  private readonly client: grpc.Client & Record<string, Unary>;
  private readonly controlDeadlineMs: number;
  /** ModelInfer's own HTTP/2 connection: requests built around the caller's tensor buffers, not copied. */
  private readonly unary: UnaryInfer;
  private closed = false;

  constructor(opts: TritonClientOptions) {
    this.url = opts.url;
    this.controlDeadlineMs = opts.controlDeadlineMs ?? CONTROL_DEADLINE_MS;
    const svc = loadService();
    const context = opts.tls ? secureContext(opts.tls) : undefined;
    const servername = opts.tls?.servername;
    this.unary = new UnaryInfer({ url: opts.url, serialize: svc.inferSerialize, deserialize: svc.inferDeserialize, keepaliveTimeMs: 10_000, keepaliveTimeoutMs: 5_000, tls: context ? { context, servername } : undefined });
    const credentials = context ? grpc.credentials.createFromSecureContext(context) : grpc.credentials.createInsecure();
    this.client = new svc.ctor(opts.url, credentials, {
      ...(servername ? { 'grpc.ssl_target_name_override': servername, 'grpc.default_authority': servername } : {}),
      // Batches of frames are large: lift gRPC's 4 MiB default both ways.
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
      // Pings only while calls are active: Triton's server defaults (300 s minimum ping interval
      // without data, 2 strikes) answer idle 10 s pings with GOAWAY ENHANCE_YOUR_CALM.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 0,
      'grpc.http2.max_pings_without_data': 0,
      // A restarted Triton is noticed within ~0.5 s instead of grpc-js's default backoff (up to
      // 120 s; 2 s here made labels resume 2.0-2.5 s after a restart, issue #12 asks for 2 s).
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 500,
    }) as grpc.Client & Record<string, Unary>;
  }

  private call<R>(method: string, req: unknown, deadlineMs = this.controlDeadlineMs): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.client[method]!(req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) reject(toInferError(err, method));
        else resolve(res as R);
      });
    });
  }

  async serverLive(): Promise<boolean> {
    return (await this.call<{ live: boolean }>('ServerLive', {})).live;
  }

  async serverReady(): Promise<boolean> {
    return (await this.call<{ ready: boolean }>('ServerReady', {})).ready;
  }

  async modelReady(name: string, version = ''): Promise<boolean> {
    return (await this.call<{ ready: boolean }>('ModelReady', { name, version })).ready;
  }

  serverMetadata(): Promise<T.ServerMetadata> {
    return this.call('ServerMetadata', {});
  }

  modelMetadata(name: string, version = ''): Promise<T.ModelMetadata> {
    return this.call('ModelMetadata', { name, version });
  }

  async modelConfig(name: string, version = ''): Promise<T.ModelConfig> {
    return (await this.call<{ config: T.ModelConfig }>('ModelConfig', { name, version })).config;
  }

  async modelStatistics(name = '', version = ''): Promise<T.ModelStatistics[]> {
    return (await this.call<{ model_stats: T.ModelStatistics[] }>('ModelStatistics', { name, version })).model_stats;
  }

  async repositoryIndex(ready = false): Promise<T.RepositoryModel[]> {
    return (await this.call<{ models: T.RepositoryModel[] }>('RepositoryIndex', { repository_name: '', ready })).models;
  }

  /**
   * One inference. `deadlineMs` bounds the whole call (gRPC deadline). The request's
   * raw_input_contents go on the wire as they are (see unary.ts): they must not change until the
   * promise settles.
   */
  modelInfer(req: T.InferRequest, deadlineMs: number): Promise<T.InferResponse> {
    return this.unary.infer(req, deadlineMs);
  }

  /** The same call through grpc-js's generic path (protobufjs message, framed copy): comparisons and tests. */
  modelInferGrpcJs(req: T.InferRequest, deadlineMs: number): Promise<T.InferResponse> {
    return this.call('ModelInfer', req, deadlineMs);
  }

  /** Registers a system shared-memory region (shm_open `key`) with Triton under `name`. */
  async systemSharedMemoryRegister(name: string, key: string, byteSize: number, offset = 0): Promise<void> {
    await this.call('SystemSharedMemoryRegister', { name, key, offset, byte_size: byteSize });
  }

  /** Unregisters one region, or every system region when `name` is empty. */
  async systemSharedMemoryUnregister(name = ''): Promise<void> {
    await this.call('SystemSharedMemoryUnregister', { name });
  }

  /** Registered system regions (one, or all when `name` is empty). */
  async systemSharedMemoryStatus(name = ''): Promise<T.SharedMemoryRegion[]> {
    const res = await this.call<{ regions: Record<string, T.SharedMemoryRegion> }>('SystemSharedMemoryStatus', { name });
    return Object.values(res.regions ?? {});
  }

  /**
   * Opens a ModelStreamInfer stream: requests are sent with ids, responses matched by id, in-band
   * errors reject their request, a broken stream rejects everything pending.
   */
  modelStreamInfer(): InferStream {
    if (this.closed) throw new FramewireError('INFER_UNAVAILABLE', 'infer', 'Triton client is closed', { retriable: false });
    const open = (this.client as unknown as Record<string, (md: grpc.Metadata, opts: grpc.CallOptions) => DuplexCall>).ModelStreamInfer!;
    return new InferStream(open.call(this.client, new grpc.Metadata(), {}));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unary.close();
    this.client.close();
  }
}
