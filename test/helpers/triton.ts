/**
 * Extra tritonserver processes beside the stack's (failover tests, the client benchmark): same
 * binary, environment and model repository as scripts/stack.sh `start_triton`, other ports, only
 * the named models loaded. Each runs in its own process group; stop() ends it and its Python
 * backend stubs.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './stack.js';

const CACHE = process.env.FRAMEWIRE_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'framewire');
const VENV = path.join(CACHE, 'venv');
/**
 * One `<grpcPort>.pid` per running private Triton (its process group), removed by stop(): what a
 * test runner that died or timed out leaves here, .ci/run stops.
 */
export const PRIVATE_TRITON_PIDS = path.join(ROOT, '.stack/private-tritons');

export interface TritonProcess {
  url: string;
  httpPort: number;
  pid: number;
  /** SIGTERM (graceful, as a restart would) and wait; SIGKILL of the group after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface TritonLaunch {
  httpPort: number;
  grpcPort: number;
  metricsPort: number;
  models: string[];
  readyTimeoutMs?: number;
  /** More tritonserver flags (e.g. --grpc-use-ssl=true and its certificates). */
  extraArgs?: string[];
}

let site: string | undefined;
function sitePackages(): string {
  site ??= execFileSync(path.join(VENV, 'bin/python'), ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' }).trim();
  return site;
}

/** No keep-alive: an open HTTP connection holds Triton's graceful exit for its whole exit timeout. */
function httpReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v2/health/ready', agent: false, timeout: 1000, headers: { connection: 'close' } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

const STUB_REGION = /^triton_python_backend_shm_region_/;
const stubRegions = () => new Set(fs.readdirSync('/dev/shm').filter((n) => STUB_REGION.test(n)));

export async function startTriton(o: TritonLaunch): Promise<TritonProcess> {
  const purelib = sitePackages();
  const regionsBefore = stubRegions();
  let ownRegions: string[] = [];
  const logs = path.join(ROOT, '.stack/logs');
  fs.mkdirSync(logs, { recursive: true });
  const logFile = path.join(logs, `triton-${o.grpcPort}.log`);
  const out = fs.openSync(logFile, 'w');
  const args = [
    `--model-repository=${path.join(ROOT, 'deploy/triton/models')}`,
    `--backend-directory=${path.join(CACHE, 'triton-backends')}`,
    `--cache-directory=${path.join(purelib, 'pytriton/tritonserver/caches')}`,
    '--model-control-mode=explicit',
    ...o.models.map((m) => `--load-model=${m}`),
    '--http-address=127.0.0.1', `--http-port=${o.httpPort}`,
    '--grpc-address=127.0.0.1', `--grpc-port=${o.grpcPort}`,
    '--metrics-address=127.0.0.1', `--metrics-port=${o.metricsPort}`,
    '--allow-gpu-metrics=false', '--exit-timeout-secs=5',
    ...(o.extraArgs ?? []),
  ];
  const child: ChildProcess = spawn(path.join(purelib, 'pytriton/tritonserver/bin/tritonserver'), args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      LD_LIBRARY_PATH: [path.join(purelib, 'nvidia_pytriton.libs'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      PATH: `${path.join(VENV, 'bin')}:${process.env.PATH}`,
      PYTHONPATH: purelib,
    },
  });
  fs.closeSync(out);
  const pid = child.pid!;
  const pidFile = path.join(PRIVATE_TRITON_PIDS, `${o.grpcPort}.pid`);
  fs.mkdirSync(PRIVATE_TRITON_PIDS, { recursive: true });
  fs.writeFileSync(pidFile, `${pid}\n`);
  let exited = false;
  const exit = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  let stopping: Promise<void> | undefined;
  const proc: TritonProcess = {
    url: `127.0.0.1:${o.grpcPort}`,
    httpPort: o.httpPort,
    pid,
    stop(graceMs = 15_000) {
      stopping ??= (async () => {
        if (!exited) {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            /* gone */
          }
          let t: NodeJS.Timeout | undefined;
          await Promise.race([exit, new Promise<void>((r) => (t = setTimeout(r, graceMs)))]);
          clearTimeout(t);
        }
        // Whatever is left of the group (stubs of a Triton that died hard), and the Python
        // backend's shm regions such a Triton does not remove.
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* none */
        }
        for (const n of ownRegions) fs.rmSync(path.join('/dev/shm', n), { force: true });
        fs.rmSync(pidFile, { force: true });
      })();
      return stopping;
    },
  };
  const deadline = Date.now() + (o.readyTimeoutMs ?? 90_000);
  while (!(await httpReady(o.httpPort))) {
    if (exited || Date.now() > deadline) {
      await proc.stop(1000);
      throw new Error(`tritonserver on :${o.grpcPort} did not become ready; see ${logFile}:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  // The stack's Triton creates its regions when it starts, not later: new ones are this process's.
  ownRegions = [...stubRegions()].filter((n) => !regionsBefore.has(n));
  return proc;
}
