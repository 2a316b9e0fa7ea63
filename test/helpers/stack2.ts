/**
 * A second, private stack for tests that kill or restart a broker or a server: its own ports and
 * state directory (docs: scripts/stack.sh), started and stopped by the test itself, so the shared
 * stack and every other test are never disturbed. Ports come from FRAMEWIRE_STACK2_* or default
 * to the ones reserved for this work (Kafka 9192/9193, Triton 8110/8111/8112).
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './stack.js';

const env = (name: string, dflt: number): number => Number(process.env[`FRAMEWIRE_STACK2_${name}`] ?? dflt);

export class SecondStack {
  readonly state: string;
  readonly kafkaPort = env('KAFKA_PORT', 9192);
  readonly tritonGrpcPort = env('TRITON_GRPC_PORT', 8111);
  readonly tritonHttpPort = env('TRITON_HTTP_PORT', 8110);
  private readonly env: NodeJS.ProcessEnv;

  constructor(state = process.env.FRAMEWIRE_STACK2_STATE ?? path.join(ROOT, '.stack2')) {
    this.state = state;
    this.env = {
      ...process.env,
      FRAMEWIRE_STACK_STATE: state,
      FRAMEWIRE_KAFKA_PORT: String(this.kafkaPort),
      FRAMEWIRE_KAFKA_CONTROLLER_PORT: String(env('KAFKA_CONTROLLER_PORT', 9193)),
      FRAMEWIRE_TRITON_HTTP_PORT: String(this.tritonHttpPort),
      FRAMEWIRE_TRITON_GRPC_PORT: String(this.tritonGrpcPort),
      FRAMEWIRE_TRITON_METRICS_PORT: String(env('TRITON_METRICS_PORT', 8112)),
    };
  }

  get brokers(): string[] {
    return [`127.0.0.1:${this.kafkaPort}`];
  }

  get tritonUrl(): string {
    return `127.0.0.1:${this.tritonGrpcPort}`;
  }

  /** `stack.sh up [service]` on this stack's ports (idempotent; waits until ready). */
  up(service?: 'kafka' | 'triton'): void {
    execFileSync('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up', ...(service ? [service] : [])], { env: this.env, stdio: ['ignore', 'ignore', 'inherit'] });
  }

  /**
   * `stack.sh install`: what `up` installs, started nothing. A test that runs its own tritonserver
   * (test/helpers/triton.ts) on this stack's ports needs the model files `up kafka` does not build.
   */
  install(): void {
    execFileSync('bash', [path.join(ROOT, 'scripts/stack.sh'), 'install'], { env: this.env, stdio: ['ignore', 'ignore', 'inherit'] });
  }

  /** `up` without blocking the event loop (cameras in the same process keep running meanwhile). */
  upAsync(service?: 'kafka' | 'triton'): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up', ...(service ? [service] : [])], { env: this.env }, (err, _out, errOut) =>
        err ? reject(new Error(`second stack up ${service ?? ''} failed: ${errOut.slice(-2000)}`)) : resolve(),
      );
    });
  }

  /** Stops whatever of this stack runs and removes its state (the next `up` starts fresh). */
  down(removeState = true): void {
    execFileSync('bash', [path.join(ROOT, 'scripts/stack.sh'), 'down'], { env: this.env, stdio: ['ignore', 'ignore', 'inherit'] });
    if (removeState) rmSync(this.state, { recursive: true, force: true });
  }

  pid(service: 'kafka' | 'triton'): number | undefined {
    try {
      const pid = Number(readFileSync(path.join(this.state, `${service}.pid`), 'utf8').trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** kill -9 of the service's whole process group (stack.sh starts each with setsid). */
  kill9(service: 'kafka' | 'triton'): void {
    const pid = this.pid(service);
    if (pid === undefined) throw new Error(`second stack: no ${service} pid in ${this.state}`);
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      process.kill(pid, 'SIGKILL');
    }
    // Gone before this returns: an `up` right after must not see the dying process as running.
    const tick = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; waited < 10_000 && alive(pid); waited += 20) Atomics.wait(tick, 0, 0, 20);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
