import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod/v4';
import { FramewireError } from '../core/errors.js';
import { topologySchema, type Topology } from './topology.js';

/** `${VAR}` and `${VAR:-default}` in the file are replaced from the environment. */
export function interpolateEnv(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(/\$\{([A-Z0-9_]+)(?::-([^}]*))?\}/g, (_m, name: string, def: string | undefined) => env[name] ?? def ?? '');
}

function formatPath(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

export function parseTopology(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Topology {
  let raw: unknown;
  try {
    raw = YAML.parse(interpolateEnv(text, env));
  } catch (err) {
    throw new FramewireError('TOPOLOGY_UNREADABLE', 'config', `${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const res = topologySchema().safeParse(raw ?? {});
  if (!res.success) {
    const problems = res.error.issues.map((i: z.core.$ZodIssue) => `${file}: ${formatPath(i.path)}: ${i.message}`);
    throw new FramewireError('TOPOLOGY_INVALID', 'config', problems.join('\n'));
  }
  return res.data;
}

export function loadTopology(file: string): Topology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FramewireError('TOPOLOGY_UNREADABLE', 'config', `${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  return parseTopology(text, file);
}
