/**
 * Post-processing step: smoothed labels become `change` events (docs/contracts.md), published
 * best effort through the output stage (they gate no offsets). Runs after each delivered batch
 * of labels, between the infer stage and the outputs.
 */
import type { LabelRecord } from '../core/frame.js';
import type { Metrics } from '../telemetry/metrics.js';
import { RecordBatch } from '../core/sink.js';
import type { OutputStage } from '../sinks/output.js';
import type { ChangeEvent } from '../core/events.js';
import type { Smoother } from './smoothing.js';

export function changeEvents(smoother: Smoother, output: OutputStage, metrics: Metrics, observed: (events: ChangeEvent[]) => void): (records: LabelRecord[]) => void {
  return (records) => {
    const events = smoother.observe(records);
    if (events.length === 0) return;
    metrics.changeEvents.inc(events.length);
    observed(events);
    output.bestEffort(new RecordBatch(events), 'change events');
  };
}
