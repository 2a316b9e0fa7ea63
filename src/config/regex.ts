/**
 * A regular expression in the topology (stream patterns). Compiled when the file is loaded, so a
 * bad one is a topology error naming its field (exit 2), never a failure when a stream shows up.
 */
import { z } from 'zod/v4';

export function regexProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
}

/** A string field holding a regular expression, validated at load time. */
export function regexString() {
  return z.string().superRefine((s, ctx) => {
    const problem = regexProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}
