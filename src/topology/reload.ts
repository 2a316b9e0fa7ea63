/**
 * Topology reload (SIGHUP) of a running pipeline: each infer lane may move to another model or
 * model version (`models[].name`, `models[].version`, `models[].topK`). Frames keep flowing:
 * batches taken before the switch finish on the old model, every batch taken after it goes to the
 * new one, so each frame gets exactly one label record and none is lost. Other changes (sources,
 * batching, sinks, the number of models, their `streams` or `clip`) need a restart: they are
 * reported, not applied.
 *
 * A reload is all or nothing: every new model is checked ready in Triton and described first, and
 * its input must match the lane's (the frames queued for it were decoded at that size), before
 * any lane switches. A failed reload leaves the pipeline as it was.
 */
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { ModelConfig, Topology } from '../config/topology.js';
import type { InferStage } from '../infer/stage.js';
import { describeModel, inputMismatch, type ModelSpec } from '../infer/triton/model.js';
import type { ModelRef, TritonPool } from '../infer/triton/pool.js';

/** What a reload needs of a running lane. */
export interface ReloadableLane {
  readonly stage: InferStage;
  /** Replaces the lane's shadow model (or removes it). */
  setShadow(primary: ModelSpec, spec: ModelSpec | undefined, config: ModelConfig['shadow']): void;
}

export interface ReloadResult {
  /** One line per lane that moved: "open_nsfw v1 -> open_nsfw_int8 v1". */
  switched: string[];
  /** Top-level topology sections that changed but need a restart. */
  ignored: string[];
}

/** The `model_version` a topology entry asks for ('' = Triton's version policy). */
export function requestedVersion(m: Pick<ModelConfig, 'version'>): string {
  return m.version === undefined ? '' : String(m.version);
}

const invalid = (msg: string) => new FramewireError('TOPOLOGY_INVALID', 'config', `reload: ${msg}`);

export class ModelReloader {
  private models: ModelConfig[];
  private rest: string;
  /** Reloads run one at a time (two SIGHUPs in a row). */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly running: Topology,
    private readonly lanes: readonly ReloadableLane[],
    private readonly pool: TritonPool,
    /** Told the topology now running after a reload that applied: the start's, with the new models. */
    private readonly applied?: (now: Topology) => void,
  ) {
    this.models = running.models.map((m) => ({ ...m }));
    this.rest = restOf(running);
  }

  /** Applies `next`'s model choices; rejects (TOPOLOGY_INVALID, naming the field) without changing anything when it cannot. */
  reload(next: Topology): Promise<ReloadResult> {
    const run = this.chain.then(() => this.apply(next));
    this.chain = run.catch(() => {});
    return run;
  }

  /**
   * Swaps lane `lane`'s primary and shadow (its `shadow.promoteWhen` was met): a reload of the
   * running topology with the two swapped, so it is checked and applied like any other (between
   * batches, all or nothing). The old primary becomes the shadow, with the same sampling and
   * without `promoteWhen`, so a lane never swaps back by itself. `expect` names the primary and
   * shadow whose report met the condition: a reload applied meanwhile that changed either makes
   * the promotion void (refused, nothing changes).
   */
  promote(lane: number, expect?: { model: string; shadow: string }): Promise<ReloadResult> {
    const run = this.chain.then(() => {
      const cur = this.models[lane];
      const sh = cur?.shadow;
      if (!cur || !sh) throw invalid(`models[${lane}].shadow: the lane has no shadow to promote`);
      if (expect && (cur.name !== expect.model || sh.name !== expect.shadow)) {
        throw invalid(`models[${lane}]: the lane runs ${cur.name} with shadow ${sh.name} since a reload, not ${expect.model} with ${expect.shadow} whose report met promoteWhen; not promoted`);
      }
      const { promoteWhen: _met, ...kept } = sh;
      const models = this.models.map((m, i) => (i !== lane ? m : { ...m, name: sh.name, version: sh.version, shadow: { ...kept, name: m.name, version: m.version } }));
      return this.apply({ ...this.running, models });
    });
    this.chain = run.catch(() => {});
    return run;
  }

  private async apply(next: Topology): Promise<ReloadResult> {
    if (next.models.length !== this.models.length) throw invalid(`models: ${next.models.length} models, the running pipeline has ${this.models.length}; restart to add or remove one`);
    const plan: { lane: number; spec: ModelSpec; topK: number; from: ModelSpec }[] = [];
    // Lanes whose shadow changed (promotion: primary and shadow swapped is one such change).
    const shadows: number[] = [];
    for (const [i, m] of next.models.entries()) {
      const cur = this.models[i]!;
      if (m.streams !== cur.streams) throw invalid(`models[${i}].streams changed; restart to re-route streams`);
      if (JSON.stringify(m.clip) !== JSON.stringify(cur.clip)) throw invalid(`models[${i}].clip changed; restart to change clip windows`);
      if (JSON.stringify(m.shadow) !== JSON.stringify(cur.shadow)) shadows.push(i);
      if (m.name === cur.name && requestedVersion(m) === requestedVersion(cur) && m.topK === cur.topK) continue;
      const version = requestedVersion(m);
      const client = this.pool.primary;
      const ready = await client.modelReady(m.name, version).catch(() => false);
      if (!ready) throw invalid(`models[${i}]: model '${m.name}'${version ? ` version ${version}` : ''} is not ready in Triton at ${client.url}`);
      const spec = await describeModel(client, m.name, { version, clipFrames: m.clip?.frames }).catch((err: FramewireError) => {
        throw invalid(`models[${i}]: ${err.message}`);
      });
      const from = this.lanes[i]!.stage.spec;
      const mismatch = inputMismatch(from, spec);
      if (mismatch) throw invalid(`models[${i}]: ${mismatch}; restart to change the input`);
      plan.push({ lane: i, spec, topK: m.topK, from });
    }
    const shadowPlan: { lane: number; spec: ModelSpec | undefined }[] = [];
    for (const i of shadows) {
      const sh = next.models[i]!.shadow;
      if (!sh) {
        shadowPlan.push({ lane: i, spec: undefined });
        continue;
      }
      const client = this.pool.primary;
      const version = sh.version === undefined ? '' : String(sh.version);
      if (!(await client.modelReady(sh.name, version).catch(() => false))) throw invalid(`models[${i}].shadow.name: model '${sh.name}' is not ready in Triton at ${client.url}`);
      const spec = await describeModel(client, sh.name, { version }).catch((err: FramewireError) => {
        throw invalid(`models[${i}].shadow: ${err.message}`);
      });
      const primary = plan.find((p) => p.lane === i)?.spec ?? this.lanes[i]!.stage.spec;
      const mismatch = inputMismatch(primary, spec);
      if (mismatch) throw invalid(`models[${i}].shadow.name: ${mismatch}`);
      shadowPlan.push({ lane: i, spec });
    }
    // Health checks ask for the new models before the first batch goes to them.
    const refs: ModelRef[] = next.models.map((m) => ({ name: m.name, version: requestedVersion(m) }));
    this.pool.setModels(refs);
    const switched: string[] = [];
    for (const p of plan) {
      this.lanes[p.lane]!.stage.switchModel(p.spec, p.topK);
      switched.push(`${p.from.name} v${p.from.version} -> ${p.spec.name} v${p.spec.version}`);
    }
    for (const p of shadowPlan) {
      const lane = this.lanes[p.lane]!;
      lane.setShadow(lane.stage.spec, p.spec, next.models[p.lane]!.shadow);
      switched.push(p.spec ? `shadow of ${lane.stage.spec.name} -> ${p.spec.name} v${p.spec.version}` : `shadow of ${lane.stage.spec.name} removed`);
    }
    this.models = next.models.map((m) => ({ ...m }));
    this.applied?.({ ...this.running, models: next.models });
    const restNext = restOf(next);
    const ignored = restNext === this.rest ? [] : changedSections(JSON.parse(this.rest) as Record<string, unknown>, JSON.parse(restNext) as Record<string, unknown>);
    if (switched.length) log.info('topology reloaded: new batches go to the new models', { switched });
    if (ignored.length) log.warn('topology reload: these sections changed but need a restart; not applied', { sections: ignored });
    return { switched, ignored };
  }
}

/** The topology without its models, as comparable text. */
function restOf(t: Topology): string {
  const { models: _models, ...rest } = t;
  return JSON.stringify(rest);
}

function changedSections(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}
