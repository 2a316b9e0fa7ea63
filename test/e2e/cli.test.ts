/**
 * The command line (docs/contracts.md): help and version exit 0, usage errors exit 2, and
 * `validate` checks a topology offline with the same field-path messages as `run`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { ROOT } from '../helpers/stack.js';
import { removeDir, writeTempFile } from '../helpers/topics.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

function framewire(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/framewire.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help lists every command; each command has its own --help; --version prints the package version', () => {
  const help = framewire('--help');
  assert.equal(help.code, 0);
  for (const cmd of ['stack', 'ingest', 'run', 'validate']) assert.match(help.stdout, new RegExp(`^\\s+${cmd}\\b`, 'm'), `--help lacks ${cmd}`);
  const runHelp = framewire('run', '--help');
  assert.equal(runHelp.code, 0);
  assert.match(runHelp.stdout, /--topology <file>/);
  const ingestHelp = framewire('ingest', '--help');
  assert.equal(ingestHelp.code, 0);
  assert.match(ingestHelp.stdout, /--stream <id>/);
  const version = framewire('--version');
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
});

test('usage errors exit 2 and say what is wrong', () => {
  for (const args of [['bogus'], ['run', '--bogus'], ['ingest', '--stream', 's'], ['stack', 'sideways'], []]) {
    const r = framewire(...args);
    assert.equal(r.code, 2, `framewire ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    assert.ok(r.stderr.trim().length > 0 || r.stdout.trim().length > 0, `framewire ${args.join(' ')} printed nothing`);
  }
  assert.match(framewire('run', '--bogus').stderr, /unknown option '--bogus'/);
});

test('validate: 0 for the local topology, 2 naming the file and field of a bad one, as run does', () => {
  const ok = framewire('validate', '--topology', 'topology/local.yaml');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /valid/);

  const bad = readFileSync(path.join(ROOT, 'topology/local.yaml'), 'utf8').replace(/budgetMs: \d+/, 'budgetMs: "fast"');
  assert.notEqual(bad, readFileSync(path.join(ROOT, 'topology/local.yaml'), 'utf8'), 'the local topology has no latency budget to break');
  const { file, dir } = writeTempFile(bad, 'bad.yaml');
  dirs.push(dir);
  const v = framewire('validate', '--topology', file);
  assert.equal(v.code, 2);
  const line = v.stderr.split('\n').find((l) => l.includes(file) && l.includes('budgetMs'));
  assert.ok(line, `no stderr line names both ${file} and the field:\n${v.stderr}`);

  // A bad regular expression is a load-time error naming its field too.
  const badRegex = readFileSync(path.join(ROOT, 'topology/local.yaml'), 'utf8').replace(/models:\n/, 'sampling: [ { streams: "cam-(", mode: keyframes } ]\nmodels:\n');
  const r = writeTempFile(badRegex, 'regex.yaml');
  dirs.push(r.dir);
  const vr = framewire('validate', '--topology', r.file);
  assert.equal(vr.code, 2, vr.stdout);
  assert.match(vr.stderr, /sampling\[0\]\.streams: not a valid regular expression/);
});
