/**
 * Alert rule evaluation, per stream, on capture time (label rules) so a replay of recorded video
 * gives the alerts of the live run; stale rules on the health tracker's `stream` events and the
 * wall clock. Pure logic: the caller feeds delivered label records in frame order, stream events
 * and clock ticks, and publishes what comes back.
 *
 * An episode fires once and resolves once, with one id. A restart re-evaluates re-published
 * frames: the id of an episode is derived from its rule, stream and first frame's capture time,
 * and open episodes read back from the alerts topic (`restore`) keep their id.
 */
import type { LabelRecord } from '../core/frame.js';
import type { AlertRule } from './config.js';
import type { AlertRecord, StreamEvent } from '../core/events.js';

/** Where a frame came from: a label record's lineage fields (or those a restored alert record kept). */
type Lineage = Partial<Pick<LabelRecord, 'partition' | 'offset' | 'keyFrame' | 'keyOffset' | 'model' | 'modelVersion' | 'topologyHash'>>;

interface LabelState {
  rule: AlertRule;
  /** First matching frame of the current run (not yet firing), -1 when none. */
  runFrame: number;
  runTs: number;
  firing: boolean;
  id: string;
  fromFrame: number;
  /** Last matching frame and its capture time (firing). */
  lastFrame: number;
  lastTs: number;
  peak: number;
  /** Lineage of runFrame, fromFrame and lastFrame. */
  runRec: Lineage | undefined;
  fromRec: Lineage | undefined;
  lastRec: Lineage | undefined;
}

interface StaleState {
  rule: AlertRule;
  firing: boolean;
  id: string;
  fromFrame: number;
  fromRec: Lineage | undefined;
}

interface StreamAlerts {
  stream: string;
  session: string;
  labels: LabelState[];
  stale: StaleState[];
  /** Wall time the stream was found stalled; undefined while chunks come. */
  stalledSince: number | undefined;
  lastFrame: number;
  lastRec: Lineage | undefined;
  /** Wall time its session ended (its last frames may still come). */
  endedAt: number | undefined;
}

const MAX_STREAMS = 10_000;
/** How long after its session ended a stream's label episodes may still resolve from its last frames. */
const END_GRACE_MS = 5000;

export class AlertEngine {
  private readonly streams = new Map<string, StreamAlerts>();
  private readonly patterns: (RegExp | undefined)[];

  constructor(private readonly rules: AlertRule[], private readonly now: () => number = Date.now) {
    this.patterns = rules.map((r) => (r.streams === undefined ? undefined : new RegExp(r.streams)));
  }

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /** Delivered label records, in frame order per stream. Returns the alert records they cause. */
  labels(records: readonly LabelRecord[], out: AlertRecord[] = []): AlertRecord[] {
    if (this.rules.length === 0) return out;
    for (const r of records) {
      const s = this.stateOf(r.stream, r.session, out);
      if (!s) continue;
      s.lastFrame = r.frame;
      s.lastRec = r;
      const top = r.labels[0];
      for (const st of s.labels) {
        const match = top !== undefined && top.label === st.rule.label && top.score >= st.rule.minScore;
        if (match) {
          if (st.firing) {
            st.lastFrame = r.frame;
            st.lastTs = r.captureTs;
            st.lastRec = r;
            if (top.score > st.peak) st.peak = top.score;
            continue;
          }
          if (st.runFrame < 0) {
            st.runFrame = r.frame;
            st.runTs = r.captureTs;
            st.runRec = r;
            st.peak = 0;
          }
          if (top.score > st.peak) st.peak = top.score;
          if (r.captureTs - st.runTs >= st.rule.forMs) {
            st.firing = true;
            st.id = `${st.rule.name}:${r.stream}:${st.runTs}`;
            st.fromFrame = st.runFrame;
            st.fromRec = st.runRec;
            st.lastFrame = r.frame;
            st.lastTs = r.captureTs;
            st.lastRec = r;
            out.push(this.record(st.rule, st.id, s, 'firing', st.fromFrame, r.frame, r.captureTs, top.score, st.fromRec, r));
          }
        } else if (st.firing) {
          if (r.captureTs - st.lastTs >= st.rule.clearMs) {
            const rec = this.record(st.rule, st.id, s, 'resolved', st.fromFrame, st.lastFrame, st.lastTs, st.peak, st.fromRec, st.lastRec);
            rec.clearedFrame = r.frame;
            rec.clearedTs = r.captureTs;
            rec.reason = 'cleared';
            out.push(rec);
            reset(st);
          }
        } else {
          st.runFrame = -1; // the hold is broken: forMs counts again from the next match
        }
      }
    }
    return out;
  }

  /** A `stream` health event. */
  streamEvent(e: StreamEvent, out: AlertRecord[] = []): AlertRecord[] {
    if (this.rules.length === 0) return out;
    if (e.state === 'ended') {
      // The session's last frames are still on their way (decoder flush): label episodes resolve
      // from them, or `ended` after a grace period; a stall is over at once.
      const s = this.streams.get(e.stream);
      if (s && s.session === e.session) {
        s.endedAt = this.now();
        s.stalledSince = undefined;
        for (const st of s.stale) if (st.firing) this.resolveStale(s, st, 'ended', e.ts, out);
      }
      return out;
    }
    const s = this.stateOf(e.stream, e.session, out);
    if (!s) return out;
    if (e.state === 'stalled') {
      s.stalledSince = e.ts;
      this.tickStream(s, this.now(), out);
    } else {
      s.stalledSince = undefined;
      for (const st of s.stale) if (st.firing) this.resolveStale(s, st, 'resumed', e.ts, out);
    }
    return out;
  }

  /** Stale rules whose time has come (call a few times a second). */
  tick(out: AlertRecord[] = []): AlertRecord[] {
    if (this.rules.length === 0) return out;
    const now = this.now();
    for (const s of this.streams.values()) {
      if (s.stalledSince !== undefined) this.tickStream(s, now, out);
      if (s.endedAt !== undefined && now - s.endedAt >= END_GRACE_MS) {
        this.endAll(s, 'ended', out);
        this.streams.delete(s.stream);
      }
    }
    return out;
  }

  /** Episodes firing now, as their firing records (a dashboard that connects gets these). */
  active(): AlertRecord[] {
    const out: AlertRecord[] = [];
    for (const s of this.streams.values()) {
      for (const st of s.labels) if (st.firing) out.push(this.record(st.rule, st.id, s, 'firing', st.fromFrame, st.lastFrame, st.lastTs, st.peak, st.fromRec, st.lastRec));
      for (const st of s.stale) if (st.firing) out.push(this.record(st.rule, st.id, s, 'firing', st.fromFrame, st.fromFrame, s.stalledSince ?? this.now(), undefined, st.fromRec, st.fromRec));
    }
    return out;
  }

  /**
   * Open episodes of a previous run (its alert records, oldest first, e.g. read back from the
   * alerts topic): an episode whose last record is `firing` goes on with its id, so the restarted
   * run resolves it (or re-fires it, same id) instead of opening a new one.
   */
  restore(records: readonly AlertRecord[]): void {
    const last = new Map<string, AlertRecord>();
    for (const r of records) {
      if (r.type !== 'alert') continue;
      last.delete(r.id);
      last.set(r.id, r);
    }
    for (const r of last.values()) {
      if (r.state !== 'firing') continue;
      const s = this.stateOf(r.stream, r.session, []);
      if (!s) continue;
      const st = s.labels.find((x) => x.rule.name === r.rule);
      if (st) {
        st.firing = true;
        st.id = r.id;
        st.fromFrame = r.fromFrame;
        st.lastFrame = r.atFrame;
        st.lastTs = r.captureTs;
        st.peak = r.score ?? 0;
        st.fromRec = { partition: r.partition, offset: r.fromOffset, keyFrame: r.clipFrame, keyOffset: r.clipOffset };
        st.lastRec = r;
        continue;
      }
      const stale = s.stale.find((x) => x.rule.name === r.rule);
      if (stale) {
        stale.firing = true;
        stale.id = r.id;
        stale.fromFrame = r.fromFrame;
        stale.fromRec = r;
        s.stalledSince ??= r.captureTs;
      }
    }
  }

  private tickStream(s: StreamAlerts, now: number, out: AlertRecord[]): void {
    for (const st of s.stale) {
      if (st.firing || now - s.stalledSince! < st.rule.stale!) continue;
      st.firing = true;
      st.id = `${st.rule.name}:${s.stream}:${s.stalledSince}`;
      st.fromFrame = s.lastFrame;
      st.fromRec = s.lastRec;
      out.push(this.record(st.rule, st.id, s, 'firing', s.lastFrame, s.lastFrame, now, undefined, s.lastRec, s.lastRec));
    }
  }

  private resolveStale(s: StreamAlerts, st: StaleState, reason: 'resumed' | 'ended', ts: number, out: AlertRecord[]): void {
    const rec = this.record(st.rule, st.id, s, 'resolved', st.fromFrame, s.lastFrame, ts, undefined, st.fromRec, s.lastRec);
    rec.reason = reason;
    out.push(rec);
    st.firing = false;
  }

  /** The session is over: what is firing resolves (`ended`). */
  private endAll(s: StreamAlerts, reason: 'ended', out: AlertRecord[]): void {
    for (const st of s.labels) {
      if (!st.firing) continue;
      const rec = this.record(st.rule, st.id, s, 'resolved', st.fromFrame, st.lastFrame, st.lastTs, st.peak, st.fromRec, st.lastRec);
      rec.reason = reason;
      out.push(rec);
      reset(st);
    }
    for (const st of s.stale) if (st.firing) this.resolveStale(s, st, reason, this.now(), out);
  }

  /** The stream's rule states for this session (a new session ends the old one's episodes). */
  private stateOf(stream: string, session: string, out: AlertRecord[]): StreamAlerts | undefined {
    let s = this.streams.get(stream);
    if (s && s.session === session) return s.labels.length + s.stale.length ? s : undefined;
    if (s) this.endAll(s, 'ended', out);
    const labels: LabelState[] = [];
    const stale: StaleState[] = [];
    this.rules.forEach((rule, i) => {
      const p = this.patterns[i];
      if (p && !p.test(stream)) return;
      if (rule.label !== undefined) labels.push({ rule, runFrame: -1, runTs: 0, firing: false, id: '', fromFrame: -1, lastFrame: -1, lastTs: 0, peak: 0, runRec: undefined, fromRec: undefined, lastRec: undefined });
      else stale.push({ rule, firing: false, id: '', fromFrame: -1, fromRec: undefined });
    });
    if (!s && this.streams.size >= MAX_STREAMS) this.streams.delete(this.streams.keys().next().value!);
    s = { stream, session, labels, stale, stalledSince: undefined, lastFrame: -1, lastRec: undefined, endedAt: undefined };
    this.streams.set(stream, s);
    return labels.length + stale.length ? s : undefined;
  }

  private record(rule: AlertRule, id: string, s: StreamAlerts, state: 'firing' | 'resolved', fromFrame: number, atFrame: number, captureTs: number, score: number | undefined, from: Lineage | undefined, at: Lineage | undefined): AlertRecord {
    const rec: AlertRecord = { type: 'alert', id, rule: rule.name, stream: s.stream, session: s.session, state, severity: rule.severity, fromFrame, atFrame, captureTs, publishedTs: 0 };
    if (rule.label !== undefined) {
      rec.label = rule.label;
      rec.score = score;
    }
    addLineage(rec, from, at);
    return rec;
  }
}

function reset(st: LabelState): void {
  st.firing = false;
  st.runFrame = -1;
  st.id = '';
  st.runRec = st.fromRec = st.lastRec = undefined;
}

/** An alert's lineage (docs/contracts.md "Lineage"): `atFrame`'s chunk, model and topology, and `fromFrame`'s chunk. */
export function addLineage(rec: AlertRecord, from: Lineage | undefined, at: Lineage | undefined): void {
  if (!at) return;
  if (at.partition !== undefined && at.offset !== undefined) {
    rec.partition = at.partition;
    rec.offset = at.offset;
    if (from?.offset !== undefined && from.partition === at.partition) rec.fromOffset = from.offset;
    // Where a clip of the episode starts: the keyframe decoding `fromFrame` starts from.
    if (from?.keyOffset !== undefined && from.keyFrame !== undefined && from.partition === at.partition) {
      rec.clipFrame = from.keyFrame;
      rec.clipOffset = from.keyOffset;
    }
    // Where `atFrame` is decoded from (its snapshot).
    if (at.keyOffset !== undefined && at.keyFrame !== undefined) {
      rec.keyFrame = at.keyFrame;
      rec.keyOffset = at.keyOffset;
    }
  }
  if (at.model !== undefined) rec.model = at.model;
  if (at.modelVersion !== undefined) rec.modelVersion = at.modelVersion;
  if (at.topologyHash !== undefined) rec.topologyHash = at.topologyHash;
}
