// Writes the generated docs (npm run docs). Run after `npm run build`.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedDocs } from '../dist/src/config/docs.js';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
for (const [file, text] of Object.entries(generatedDocs())) {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), text);
  console.log(`wrote ${file}`);
}
