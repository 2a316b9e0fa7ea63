/**
 * Regular-expression fields of the topology. They are compiled when the topology is loaded, so a
 * bad pattern is a topology error naming its field (exit 2), never a failure at run time.
 */
import { z } from 'zod/v4';

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

/** A string field holding a regular expression; validated on load, compiled once by its user. */
export function regexField(description: string) {
  return z
    .string()
    .refine(compiles, { error: (iss) => `not a valid regular expression: ${String(iss.input)}` })
    .describe(description);
}
