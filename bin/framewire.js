#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/cli.ts by `npm install` (prepare) or `npm run build`.
// kafkajs 2 warns about its default partitioner at every producer; we key by stream id and accept it.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
const { main } = await import('../dist/src/cli.js');
main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(`framewire: ${err && err.message ? err.message : err}`); process.exitCode = 1; },
);
