/**
 * Promotion gated on agreement (issue #19, `models[].shadow.promoteWhen`): when a lane's shadow
 * report meets the condition, the lane swaps primary and shadow through the reloader (the same
 * checks and the same switch between batches as a SIGHUP reload), then announces it as a
 * `promotion` event and counts it. A promotion that cannot be applied (the shadow model no longer
 * ready, say) is logged and asked for again after PROMOTION_RETRY_MS.
 *
 * The topology file is not rewritten: a later reload of an unchanged file switches the lane back
 * to the model the file names, so the log says to update it.
 */
import { RecordBatch } from '../core/sink.js';
import type { PromotionEvent } from '../core/events.js';
import { log } from '../core/log.js';
import type { ShadowRunner } from '../infer/shadow.js';
import type { OutputStage } from '../sinks/output.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { ModelReloader, ReloadableLane } from './reload.js';

/** After a promotion that could not be applied, the next comparison that meets the condition asks again this much later. */
export const PROMOTION_RETRY_MS = 10_000;

export interface PromotionOptions {
  reloader: () => ModelReloader | undefined;
  lanes: readonly ReloadableLane[];
  output: OutputStage;
  metrics: Metrics;
}

/** Returns what a lane calls when its shadow meets `promoteWhen`. */
export function promoter(o: PromotionOptions): (lane: number, shadow: ShadowRunner) => void {
  return (lane, shadow) => {
    const stage = o.lanes[lane]!.stage;
    const met = shadow.summary(stage.spec.version);
    const condition = shadow.promoteWhen;
    const reloader = o.reloader();
    if (!reloader || !condition) return;
    log.info('shadow model meets its promotion condition; swapping primary and shadow', { model: met.model, shadow: met.shadow, agreement: met.agreement, frames: met.frames, promoteWhen: condition });
    reloader.promote(lane, { model: met.model, shadow: met.shadow }).then(
      () => {
        const now = stage.spec;
        const event: PromotionEvent = {
          type: 'promotion',
          stream: '*',
          model: now.name,
          modelVersion: now.version,
          from: met.model,
          fromVersion: met.modelVersion,
          agreement: met.agreement,
          frames: met.frames,
          promoteWhen: condition,
          ts: Date.now(),
        };
        o.metrics.shadowPromotions.inc({ model: now.name, from: met.model });
        o.output.bestEffort(new RecordBatch([event]), 'promotion events');
        log.warn('shadow model promoted: it now labels the lane; the topology file still names the old model, so a reload of it unchanged switches back', { model: now.name, from: met.model });
      },
      (err: unknown) => {
        // A shadow replaced by a reload meanwhile is stopped: it never asks again.
        log.warn('promoting the shadow model failed; asking again later', { model: met.model, shadow: met.shadow, err, retryMs: PROMOTION_RETRY_MS });
        setTimeout(() => shadow.retryPromotion(), PROMOTION_RETRY_MS).unref();
      },
    );
  };
}
