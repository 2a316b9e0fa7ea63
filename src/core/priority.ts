/**
 * Stream priority classes (`priority.streams`), highest first. The decode stage tags frames with
 * theirs, the batcher orders by it and the degrade controller (batch/degrade.ts) lowers the
 * lowest class first; they meet here.
 */
export const PRIORITIES = ['critical', 'normal', 'background'] as const;
export type Priority = (typeof PRIORITIES)[number];
