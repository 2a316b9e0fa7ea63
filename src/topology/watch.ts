/**
 * `framewire run --watch`: a topology reload when the file changes, as SIGHUP does. The file's
 * folder is watched, not the file: editors and config-map updates replace the file (a rename),
 * which a watch on the old inode never reports. Bursts of events (write, then chmod, then rename)
 * become one reload after `settleMs` of quiet, and only when the content really changed.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export interface FileWatch {
  close(): void;
}

function digest(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return ''; // between a delete and the new file's rename
  }
}

export function watchTopology(file: string, changed: () => void, settleMs = 300): FileWatch {
  const dir = path.dirname(path.resolve(file));
  const base = path.basename(file);
  let last = digest(file);
  let timer: NodeJS.Timeout | undefined;
  const watcher: FSWatcher = watch(dir, { persistent: false }, (_event, name) => {
    if (name !== null && name.toString() !== base) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      const now = digest(file);
      if (now === '' || now === last) return;
      last = now;
      changed();
    }, settleMs);
  });
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
