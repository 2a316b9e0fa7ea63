/**
 * System shared memory for Triton without a native addon. On Linux a POSIX shm region is a file
 * under /dev/shm (tmpfs): shm_open("/name") in Triton maps /dev/shm/name, so plain positional
 * fs.writeSync/readSync on that file land in the pages Triton reads, with no gRPC serialisation.
 *
 * A ShmRing is one input region (and optionally one output region) cut into equal slots, one per
 * in-flight request: created and registered once, reused for every batch, unregistered and
 * deleted on close. Regions are named `framewire-<pid>-<run>-<tag>-in|out`; a later run removes
 * those whose process is gone (a killed run), both the files and Triton's registrations. The run
 * id tells runs apart when the pid repeats (pid 1 in containers).
 *
 * A name can still be registered already when a ring is registered: an earlier ring of this
 * process under the same tag whose unregistration failed (Triton refuses to unregister a region
 * while it still holds a request that used it), or a registration a killed run left under a
 * name it shares with us. Names carry our pid and run id, so such a registration is a leftover:
 * register() unregisters that name and registers it again (Triton then maps our file, not the
 * old one).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { FramewireError } from '../../core/errors.js';
import { log } from '../../core/log.js';
import type { TritonClient } from './client.js';
import { grpcStatusOf } from './errors.js';
import type { InferParameter } from './types.js';

export const SHM_DIR = '/dev/shm';
export const SHM_PREFIX = 'framewire-';
/** This process's run id: part of every region name it creates. */
export const RUN_ID = randomBytes(4).toString('hex');
const NAME_RE = /^framewire-(\d+)-([0-9a-f]+)-/;

export interface ShmRingOptions {
  /** Short label in the region names (e.g. the model name); sanitised. */
  tag: string;
  /** Slots: the most requests that use the ring at once. */
  slots: number;
  inputSlotBytes: number;
  /** Bytes per output slot; 0 = no output region (outputs come back in the response message). */
  outputSlotBytes?: number;
  /** Directory of the shm files (tests); default /dev/shm. */
  dir?: string;
}

function shmError(message: string, cause?: unknown): FramewireError {
  return new FramewireError('INFER_SHM_FAILED', 'infer', message, { retriable: false, cause });
}

class Region {
  readonly key: string;
  readonly file: string;
  fd: number;

  constructor(readonly name: string, dir: string, readonly byteSize: number) {
    this.key = '/' + name;
    this.file = path.join(dir, name);
    // 'wx': never adopt somebody else's file.
    this.fd = fs.openSync(this.file, 'wx+', 0o600);
    fs.ftruncateSync(this.fd, byteSize);
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
    fs.rmSync(this.file, { force: true });
  }
}

export class ShmRing {
  readonly slots: number;
  readonly inputSlotBytes: number;
  readonly outputSlotBytes: number;
  readonly input: Region;
  readonly output: Region | undefined;
  private readonly free: number[] = [];
  private closed = false;

  constructor(o: ShmRingOptions) {
    this.slots = o.slots;
    this.inputSlotBytes = o.inputSlotBytes;
    this.outputSlotBytes = o.outputSlotBytes ?? 0;
    const dir = o.dir ?? SHM_DIR;
    const base = `${SHM_PREFIX}${process.pid}-${RUN_ID}-${o.tag.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 40)}`;
    try {
      this.input = new Region(`${base}-in`, dir, o.slots * o.inputSlotBytes);
      this.output = this.outputSlotBytes > 0 ? new Region(`${base}-out`, dir, o.slots * this.outputSlotBytes) : undefined;
    } catch (err) {
      // A partly built ring leaves nothing behind.
      (this as { input?: Region }).input?.close();
      throw shmError(`cannot create shared-memory files ${base}-* in ${dir}: ${(err as Error).message}`, err);
    }
    for (let i = o.slots - 1; i >= 0; i--) this.free.push(i);
  }

  /** Region names, for registration and status checks. */
  get regionNames(): string[] {
    return this.output ? [this.input.name, this.output.name] : [this.input.name];
  }

  /** A free slot, or undefined when all are in use. */
  acquire(): number | undefined {
    return this.free.pop();
  }

  release(slot: number): void {
    this.free.push(slot);
  }

  /** Copies `length` bytes of `data` into the slot's input area. */
  writeInput(slot: number, data: Buffer, length = data.length): void {
    if (length > this.inputSlotBytes) throw shmError(`input of ${length} bytes does not fit a ${this.inputSlotBytes}-byte slot`);
    let done = 0;
    while (done < length) done += fs.writeSync(this.input.fd, data, done, length - done, slot * this.inputSlotBytes + done);
  }

  /** Reads `length` bytes of the slot's output area into `into` (returned, trimmed to length). */
  readOutput(slot: number, into: Buffer, length: number): Buffer {
    if (!this.output) throw shmError('this ring has no output region');
    if (length > this.outputSlotBytes) throw shmError(`output of ${length} bytes does not fit a ${this.outputSlotBytes}-byte slot`);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.output.fd, into, done, length - done, slot * this.outputSlotBytes + done);
      if (n === 0) break;
      done += n;
    }
    return into.subarray(0, done);
  }

  /** Input tensor parameters that point Triton at `byteSize` bytes of the slot. */
  inputParameters(slot: number, byteSize: number): Record<string, InferParameter> {
    return {
      shared_memory_region: { string_param: this.input.name },
      shared_memory_byte_size: { int64_param: byteSize },
      shared_memory_offset: { int64_param: slot * this.inputSlotBytes },
    };
  }

  /** Output tensor parameters: Triton writes the output into the slot's output area. */
  outputParameters(slot: number): Record<string, InferParameter> {
    if (!this.output) throw shmError('this ring has no output region');
    return {
      shared_memory_region: { string_param: this.output.name },
      shared_memory_byte_size: { int64_param: this.outputSlotBytes },
      shared_memory_offset: { int64_param: slot * this.outputSlotBytes },
    };
  }

  /**
   * Registers the regions with one Triton; throws INFER_SHM_FAILED when Triton cannot map them.
   * A name Triton already has (ALREADY_EXISTS) is a leftover of ours: unregistered and registered again.
   */
  async register(client: TritonClient): Promise<void> {
    try {
      for (const r of this.output ? [this.input, this.output] : [this.input]) await registerRegion(client, r.name, r.key, r.byteSize);
    } catch (err) {
      await this.unregister(client);
      throw shmError(`Triton at ${client.url} cannot register shared memory ${this.input.key}: ${(err as Error).message}`, err);
    }
  }

  /** True when Triton has every region of this ring registered (false after a Triton restart). */
  async isRegistered(client: TritonClient): Promise<boolean> {
    const names = new Set((await client.systemSharedMemoryStatus()).map((r) => r.name));
    return this.regionNames.every((n) => names.has(n));
  }

  /**
   * Best effort: a Triton that is down has forgotten the regions anyway. Returns whether every
   * region is unregistered (a region Triton still reports in use is retried for a while first).
   */
  async unregister(client: TritonClient): Promise<boolean> {
    let all = true;
    for (const name of this.regionNames) if (!(await unregisterRegion(client, name))) all = false;
    return all;
  }

  /** Deletes the files; Triton's mappings stay valid until it unregisters. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.input.close();
    this.output?.close();
  }
}

/** How long unregistering waits for Triton to let go of a region it reports in use, ms. */
const UNREGISTER_PATIENCE_MS = 2000;

/**
 * Unregisters one region. Triton answers INTERNAL "currently in use" while it still holds a
 * request that read the region (it lets go just after the response is sent): retried with
 * backoff for up to UNREGISTER_PATIENCE_MS. False when it is still registered (or Triton is down).
 */
async function unregisterRegion(client: TritonClient, name: string): Promise<boolean> {
  const until = Date.now() + UNREGISTER_PATIENCE_MS;
  for (let wait = 5; ; wait = Math.min(200, wait * 2)) {
    try {
      await client.systemSharedMemoryUnregister(name);
      return true;
    } catch (err) {
      if (grpcStatusOf(err) !== grpc.status.INTERNAL || Date.now() + wait > until) return false;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Registers one region; a name Triton already has is unregistered and registered again (once). */
async function registerRegion(client: TritonClient, name: string, key: string, byteSize: number): Promise<void> {
  try {
    await client.systemSharedMemoryRegister(name, key, byteSize);
  } catch (err) {
    if (grpcStatusOf(err) !== grpc.status.ALREADY_EXISTS) throw err;
    log.warn('shared-memory region name already registered in Triton (a leftover); registering it again', { endpoint: client.url, region: name });
    await unregisterRegion(client, name);
    await client.systemSharedMemoryRegister(name, key, byteSize);
  }
}

/** Whether a region name belongs to a framewire process that no longer runs. */
export function isStaleName(name: string): boolean {
  const m = NAME_RE.exec(name);
  if (!m) return false;
  const pid = Number(m[1]);
  if (pid === process.pid) return m[2] !== RUN_ID; // same pid, earlier run (containers)
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes what killed framewire runs left behind: their /dev/shm files and their registrations
 * in each given Triton. Returns what was removed.
 */
export async function cleanStaleRegions(clients: readonly TritonClient[], dir = SHM_DIR): Promise<{ files: string[]; registrations: string[] }> {
  const files: string[] = [];
  const registrations: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    // no /dev/shm: nothing of ours can be there
  }
  for (const name of names) {
    if (!name.startsWith(SHM_PREFIX) || !isStaleName(name)) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    files.push(name);
  }
  for (const client of clients) {
    let regions;
    try {
      regions = await client.systemSharedMemoryStatus();
    } catch {
      continue; // unreachable now; its registrations die with it or are cleaned next start
    }
    for (const r of regions) {
      if (!r.name.startsWith(SHM_PREFIX) || !isStaleName(r.name)) continue;
      if (!(await unregisterRegion(client, r.name))) continue;
      registrations.push(`${client.url}/${r.name}`);
    }
  }
  if (files.length || registrations.length) log.info('removed shared memory left by earlier framewire runs', { files: files.length, registrations: registrations.length });
  return { files, registrations };
}
