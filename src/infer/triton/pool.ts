/**
 * Several Triton endpoints serving the same models. Each is health-checked (ServerReady +
 * ModelReady of every model); a request goes to the ready endpoint with the fewest outstanding
 * requests. An endpoint that fails a request as unreachable leaves the rotation at once and comes
 * back when a check passes again (after its shared-memory regions are registered again: a
 * restarted Triton has forgotten them). When no endpoint is ready, a request waits for one until
 * its frames' deadline, so an outage costs only the frames whose deadlines pass during it.
 *
 * The pool also owns the tensor transport: per endpoint, in-message tensors (`grpc`) or system
 * shared memory (`shm`), decided once per endpoint by `triton.transport`.
 */
import { FramewireError } from '../../core/errors.js';
import { log } from '../../core/log.js';
import type { Metrics } from '../../telemetry/metrics.js';
import { CONTROL_DEADLINE_MS, TritonClient } from './client.js';
import { cleanStaleRegions, type ShmRing } from './shm.js';
import type { InferParameter, InferRequest, InferRequestedOutput, InferResponse } from './types.js';
import type { TlsMaterial } from '../../config/tls.js';

/** How often an endpoint out of rotation is checked (at most healthIntervalMs), ms. */
const DOWN_CHECK_MS = 200;

/** A model as the health checks ask for it: `version` '' means Triton's version policy. */
export interface ModelRef {
  name: string;
  version: string;
}

export type TransportSetting = 'auto' | 'grpc' | 'shm';
export type Transport = 'grpc' | 'shm';

export interface TritonPoolOptions {
  endpoints: readonly string[];
  /** Models every endpoint must have ready to be in rotation (a name, or a name and pinned version). */
  models: readonly (string | ModelRef)[];
  transport?: TransportSetting;
  healthIntervalMs?: number;
  controlDeadlineMs?: number;
  metrics?: Metrics;
  /** TLS to every endpoint; default plaintext. */
  tls?: TlsMaterial;
}

export class TritonEndpoint {
  readonly client: TritonClient;
  ready = false;
  outstanding = 0;
  transport: Transport = 'grpc';
  /** Rings registered with this endpoint's Triton (shm transport). */
  readonly rings = new Set<ShmRing>();
  /** This Triton refused our regions (another host, another /dev/shm): not asked again until it restarts. */
  shmRefused = false;
  checking: Promise<void> | undefined;

  constructor(readonly url: string, controlDeadlineMs: number, tls?: TlsMaterial) {
    this.client = new TritonClient({ url, controlDeadlineMs, tls });
  }
}

/** One batch's input tensor, ready to send over either transport. */
export interface TensorBatch {
  model: string;
  /** `model_version` of the request; '' lets Triton's version policy choose. */
  version?: string;
  /** Request id (echoed by Triton). */
  id: string;
  inputName: string;
  datatype: string;
  shape: number[];
  /** The packed tensor (in-message transport). */
  data: Buffer;
  /** The same bytes already written to this ring slot (shared-memory transport). */
  ring?: ShmRing;
  slot?: number;
  outputs: InferRequestedOutput[];
  parameters?: Record<string, InferParameter>;
}

export class TritonPool {
  readonly endpoints: readonly TritonEndpoint[];
  private readonly rings: ShmRing[] = [];
  private readonly waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private downTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly transportSetting: TransportSetting;
  private readonly healthIntervalMs: number;
  private models: ModelRef[];

  constructor(private readonly o: TritonPoolOptions) {
    this.models = o.models.map((m) => (typeof m === 'string' ? { name: m, version: '' } : m));
    if (o.endpoints.length === 0) throw new FramewireError('TOPOLOGY_INVALID', 'config', 'triton: no endpoints');
    this.endpoints = o.endpoints.map((url) => new TritonEndpoint(url, o.controlDeadlineMs ?? CONTROL_DEADLINE_MS, o.tls));
    this.transportSetting = o.transport ?? 'grpc';
    this.healthIntervalMs = o.healthIntervalMs ?? 1000;
    for (const ep of this.endpoints) o.metrics?.tritonEndpointReady.set({ endpoint: ep.url }, 0);
  }

  get clients(): TritonClient[] {
    return this.endpoints.map((e) => e.client);
  }

  /** A client for control calls (metadata, readiness): the first ready endpoint, else the first. */
  get primary(): TritonClient {
    return (this.endpoints.find((e) => e.ready) ?? this.endpoints[0]!).client;
  }

  get readyCount(): number {
    let n = 0;
    for (const e of this.endpoints) if (e.ready) n++;
    return n;
  }

  /**
   * Removes what killed earlier runs left in /dev/shm and in each Triton, checks every endpoint
   * once and starts the periodic checks. Resolves even when no endpoint is ready yet.
   */
  async start(): Promise<void> {
    if (this.transportSetting !== 'grpc') await cleanStaleRegions(this.clients);
    await Promise.all(this.endpoints.map((ep) => this.check(ep)));
    this.timer = setInterval(() => {
      for (const ep of this.endpoints) void this.check(ep);
    }, this.healthIntervalMs);
    this.timer.unref();
    // An endpoint out of rotation is looked at more often, so it is back soon after Triton is.
    this.downTimer = setInterval(() => {
      for (const ep of this.endpoints) if (!ep.ready) void this.check(ep);
    }, Math.min(DOWN_CHECK_MS, this.healthIntervalMs));
    this.downTimer.unref();
  }

  /**
   * Adds a ring for shared-memory inputs and registers it with every reachable endpoint, which
   * decides each endpoint's transport. With `shm`, a refusal is an error; with `auto` that
   * endpoint falls back to in-message tensors.
   */
  async addRing(ring: ShmRing): Promise<void> {
    this.rings.push(ring);
    for (const ep of this.endpoints) {
      if (!ep.ready) continue; // registered by its first passing check
      try {
        await this.registerRing(ep, ring);
      } catch (err) {
        if (this.transportSetting === 'shm') throw err;
      }
    }
  }

  private async registerRing(ep: TritonEndpoint, ring: ShmRing): Promise<void> {
    if (this.transportSetting === 'grpc') return;
    try {
      await ring.register(ep.client);
      ep.rings.add(ring);
      this.setTransport(ep, 'shm');
    } catch (err) {
      ep.rings.delete(ring);
      ep.shmRefused = true;
      if (this.transportSetting === 'auto') {
        log.once('warn', `triton-shm-fallback:${ep.url}`, 'Triton cannot use our shared memory; sending tensors in the gRPC message', { endpoint: ep.url, err });
      }
      this.setTransport(ep, 'grpc');
      throw err;
    }
  }

  private setTransport(ep: TritonEndpoint, t: Transport): void {
    const changed = ep.transport !== t;
    ep.transport = t;
    const m = this.o.metrics;
    if (m) {
      m.tritonTransport.set({ endpoint: ep.url, transport: t }, 1);
      m.tritonTransport.set({ endpoint: ep.url, transport: t === 'shm' ? 'grpc' : 'shm' }, 0);
    }
    if (changed || t === 'shm') log.once('info', `triton-transport:${ep.url}:${t}`, 'Triton tensor transport chosen', { endpoint: ep.url, transport: t, setting: this.transportSetting });
  }

  /**
   * The models an endpoint must have ready from now on (a topology reload switched a lane to
   * another model or version; the reload checked the new ones are ready first).
   */
  setModels(models: readonly ModelRef[]): void {
    this.models = models.map((m) => ({ ...m }));
  }

  /** One health check of one endpoint (coalesced). */
  check(ep: TritonEndpoint): Promise<void> {
    if (!ep.checking) ep.checking = this.doCheck(ep).finally(() => (ep.checking = undefined));
    return ep.checking;
  }

  private async doCheck(ep: TritonEndpoint): Promise<void> {
    let ok = false;
    try {
      ok = await ep.client.serverReady();
      for (const m of this.models) if (ok) ok = await ep.client.modelReady(m.name, m.version);
      // A Triton that restarted between two checks has lost our registrations: register again.
      if (ok && this.transportSetting !== 'grpc' && this.rings.length > 0 && !ep.shmRefused) {
        const registered = new Set((await ep.client.systemSharedMemoryStatus()).map((r) => r.name));
        for (const ring of this.rings) {
          if (ring.regionNames.every((n) => registered.has(n))) {
            ep.rings.add(ring);
            if (ep.transport !== 'shm') this.setTransport(ep, 'shm');
          } else {
            ep.rings.delete(ring);
            await this.registerRing(ep, ring).catch(() => {});
          }
        }
      }
    } catch {
      ok = false;
    }
    if (this.closed) return;
    this.setReady(ep, ok);
  }

  private setReady(ep: TritonEndpoint, ready: boolean): void {
    if (ep.ready === ready) return;
    ep.ready = ready;
    this.o.metrics?.tritonEndpointReady.set({ endpoint: ep.url }, ready ? 1 : 0);
    if (ready) {
      log.info('Triton endpoint in rotation', { endpoint: ep.url, transport: ep.transport });
      const w = this.waiters.splice(0);
      for (const wake of w) wake();
    } else {
      // Its registrations must be confirmed again before it is used with shared memory; a
      // restarted Triton may accept regions a previous one refused.
      ep.rings.clear();
      ep.shmRefused = false;
      log.warn('Triton endpoint out of rotation', { endpoint: ep.url });
    }
  }

  /** The ready endpoint with the fewest outstanding requests; waits for one until `untilTs` (Unix ms). */
  async acquire(untilTs: number): Promise<TritonEndpoint> {
    for (;;) {
      if (this.closed) throw new FramewireError('INFER_UNAVAILABLE', 'infer', 'Triton pool is closed', { retriable: false });
      let best: TritonEndpoint | undefined;
      for (const ep of this.endpoints) if (ep.ready && (!best || ep.outstanding < best.outstanding)) best = ep;
      if (best) return best;
      const wait = untilTs - Date.now();
      if (wait <= 0) throw new FramewireError('INFER_UNAVAILABLE', 'infer', `no Triton endpoint is ready (${this.endpoints.map((e) => e.url).join(', ')})`, { retriable: true });
      // Woken by an endpoint coming back, or by the deadline (bounded by the health interval so a
      // missed wake-up costs at most one interval).
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(wait, this.healthIntervalMs));
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.waiters.push(done);
      });
    }
  }

  /**
   * A request on the side (a shadow model's): to a ready endpoint, in-message, at once or not at
   * all (no endpoint ready: fails without waiting). Its failure never changes an endpoint's
   * health: the endpoints are checked for the lanes' own models, which this one may not be.
   */
  async inferAside(batch: TensorBatch, deadlineMs: number): Promise<InferResponse> {
    const ep = await this.acquire(Date.now());
    const req: InferRequest = {
      model_name: batch.model,
      ...(batch.version ? { model_version: batch.version } : {}),
      id: batch.id,
      inputs: [{ name: batch.inputName, datatype: batch.datatype, shape: batch.shape }],
      outputs: batch.outputs,
      raw_input_contents: [batch.data],
    };
    ep.outstanding++;
    try {
      return await ep.client.modelInfer(req, deadlineMs);
    } finally {
      ep.outstanding--;
    }
  }

  /**
   * Sends one batch to the best endpoint. `deadlineMs` is the gRPC deadline; `untilTs` how long
   * to wait for an endpoint when none is ready. Failures are FramewireErrors; an unreachable
   * endpoint is taken out of rotation before the error reaches the caller (who retries).
   */
  async infer(batch: TensorBatch, deadlineMs: number, untilTs: number): Promise<InferResponse> {
    const ep = await this.acquire(untilTs);
    const viaShm = ep.transport === 'shm' && batch.ring !== undefined && batch.slot !== undefined && ep.rings.has(batch.ring);
    const req: InferRequest = {
      model_name: batch.model,
      ...(batch.version ? { model_version: batch.version } : {}),
      id: batch.id,
      inputs: [
        viaShm
          ? { name: batch.inputName, datatype: batch.datatype, shape: batch.shape, parameters: batch.ring!.inputParameters(batch.slot!, batch.data.length) }
          : { name: batch.inputName, datatype: batch.datatype, shape: batch.shape },
      ],
      outputs: batch.outputs,
      raw_input_contents: viaShm ? [] : [batch.data],
    };
    if (batch.parameters) req.parameters = batch.parameters;
    ep.outstanding++;
    try {
      return await ep.client.modelInfer(req, deadlineMs);
    } catch (err) {
      const e = err as FramewireError;
      if (e.code === 'INFER_UNAVAILABLE') {
        this.setReady(ep, false);
        void this.check(ep);
      } else if (e.code === 'INFER_MODEL_NOT_READY') {
        // The model was ready when this endpoint was put in rotation: it is being unloaded (a
        // Triton shutting down unloads its models first). Another endpoint, or this one later, can serve it.
        this.setReady(ep, false);
        void this.check(ep);
        throw new FramewireError('INFER_MODEL_NOT_READY', 'infer', `${e.message} (endpoint ${ep.url} taken out of rotation)`, { retriable: true, cause: e });
      } else if (viaShm && !e.retriable) {
        // A quick Triton restart between two checks forgets our regions; if so, register again and
        // let the caller retry instead of losing the frames.
        const lost = !(await batch.ring!.isRegistered(ep.client).catch(() => false));
        if (lost) {
          ep.rings.delete(batch.ring!);
          await this.registerRing(ep, batch.ring!).catch(() => {});
          throw new FramewireError('INFER_UNAVAILABLE', 'infer', `Triton at ${ep.url} lost our shared-memory registration (restarted?): ${e.message}`, { retriable: true, cause: e });
        }
      }
      throw e;
    } finally {
      ep.outstanding--;
    }
  }

  /** Stops checks, unregisters and deletes the rings, closes the connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.downTimer) clearInterval(this.downTimer);
    for (const wake of this.waiters.splice(0)) wake();
    await Promise.all(this.endpoints.map((ep) => (ep.checking ?? Promise.resolve()).catch(() => {})));
    for (const ep of this.endpoints) {
      for (const ring of this.rings) await ring.unregister(ep.client);
      ep.client.close();
    }
    for (const ring of this.rings) ring.close();
  }
}
