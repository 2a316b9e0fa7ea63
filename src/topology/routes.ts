/**
 * Which lane, budget, sampling rule and priority a stream gets. The topology's stream patterns are compiled
 * once here, when the topology is built (they were validated when it was loaded); a stream's
 * route is looked up once and cached.
 */
import type { Topology } from '../config/topology.js';
import type { Route } from '../decode/sessions.js';
import { samplingRules, type SamplingRule } from '../decode/sampling.js';
import type { Lane } from './lanes.js';
import { PRIORITIES, priorityRules, type Priority } from '../batch/degrade.js';

/** Niceness added per priority class below the highest one configured: the cores go to critical streams' decoders first. */
const NICE_STEP = 4;

/** Routes of streams long gone are forgotten past this many, rather than grow without limit. */
const MAX_CACHED_ROUTES = 10_000;

function compile(pattern: string | undefined): RegExp | undefined {
  return pattern === undefined ? undefined : new RegExp(pattern);
}

export class StreamRouter {
  private readonly lanes: { lane: Lane; pattern: RegExp | undefined }[];
  private readonly budgets: { pattern: RegExp; budgetMs: number }[];
  private readonly sampling: (stream: string) => SamplingRule;
  private readonly priority: (stream: string) => Priority;
  /** The highest class any entry names (normal when none does: every decoder then runs as before). */
  private readonly top: number;
  private readonly cache = new Map<string, Route>();

  constructor(private readonly topology: Topology, lanes: Lane[]) {
    this.lanes = lanes.map((lane, i) => ({ lane, pattern: compile(topology.models[i]!.streams) }));
    this.budgets = topology.latency.streams.map((o) => ({ pattern: new RegExp(o.streams), budgetMs: o.budgetMs }));
    this.sampling = samplingRules(topology.sampling);
    this.priority = priorityRules(topology.priority);
    this.top = Math.min(PRIORITIES.indexOf('normal'), ...topology.priority.streams.map((e) => PRIORITIES.indexOf(e.priority)));
  }

  route(stream: string): Route {
    let r = this.cache.get(stream);
    if (r) return r;
    const lane = (this.lanes.find((l) => !l.pattern || l.pattern.test(stream)) ?? this.lanes[0]!).lane;
    const budgetMs = this.budgets.find((b) => b.pattern.test(stream))?.budgetMs ?? this.topology.latency.budgetMs;
    const priority = this.priority(stream);
    const nice = this.topology.priority.niceDecoders ? Math.max(0, PRIORITIES.indexOf(priority) - this.top) * NICE_STEP : 0;
    r = { model: lane.spec.name, width: lane.spec.width, height: lane.spec.height, budgetMs, sampling: this.sampling(stream), priority, nice, push: lane.push, sessionEnded: lane.sessionEnded };
    if (this.cache.size >= MAX_CACHED_ROUTES) this.cache.clear();
    this.cache.set(stream, r);
    return r;
  }
}
