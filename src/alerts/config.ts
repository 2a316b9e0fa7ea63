/**
 * Alert rules (`alerts:` in the topology, docs/contracts.md "Alerts"). Two kinds, told apart by
 * their fields: a label rule (`label`) and a stale rule (`stale`).
 */
import { z } from 'zod/v4';
import { regexField } from '../config/regex.js';

export const alertRuleSchema = z
  .strictObject({
    name: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash and underscore only').describe('Unique name of the rule; part of every alert id.'),
    streams: regexField('Regular expression of stream ids the rule watches; default: every stream.').optional(),
    label: z.string().min(1).optional().describe('Label rule: the top label of a frame that counts as a match.'),
    minScore: z.number().min(0).max(1).default(0.5).describe('Label rule: the top label counts only with at least this score.'),
    forMs: z.int().min(0).default(0).describe('Label rule: matching frames must span this long in capture time before the alert fires, ms.'),
    clearMs: z.int().min(0).default(1000).describe('Label rule: the alert resolves at the first frame this long in capture time after the last matching frame, ms.'),
    stale: z.int().min(0).optional().describe('Stale rule: fires when the stream has been `stalled` (health.staleMs without a chunk) for this long, ms; resolves when chunks come again or the session ends.'),
    severity: z.string().min(1).default('warning').describe('Free text carried in the alert records.'),
  })
  .superRefine((r, ctx) => {
    if ((r.label === undefined) === (r.stale === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'a rule needs exactly one of `label` (a label rule) or `stale` (a stale rule)' });
    }
  })
  .describe('An alert rule: a label rule (`label`, `minScore`, `forMs`, `clearMs`) or a stale rule (`stale`).');

export const alertsSchema = z
  .array(alertRuleSchema)
  .default([])
  .superRefine((rules, ctx) => {
    const seen = new Set<string>();
    rules.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rule name '${r.name}'` });
      seen.add(r.name);
    });
  })
  .describe('Alert rules: `alert` records (firing, resolved) to the alerts topic, the WebSocket and webhook sinks.');

export type AlertRule = z.infer<typeof alertRuleSchema>;
