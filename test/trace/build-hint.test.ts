// What a missing tracer build tells the user: `make trace-build` in a checkout; in an installed
// package (no native/ sources, no Makefile) it says the tracer is a checkout's, not a command that
// cannot run there (an outside test of the installed package found "run: make trace-build").
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { buildHint } from '../../src/trace/native.ts';
import { traceHelp } from '../../src/cli/trace-command.ts';

test('a checkout is told to run make trace-build', () => {
  assert.equal(buildHint(resolve(import.meta.dirname, '../..') + '/'), 'run: make trace-build');
});

test('an installed package (no native/ sources) is not told to run make', () => {
  const installed = mkdtempSync(join(tmpdir(), 'kvs-installed-'));
  try {
    const hint = buildHint(installed + '/');
    assert.doesNotMatch(hint, /run: make/);
    assert.match(hint, /source checkout/);
  } finally {
    rmSync(installed, { recursive: true, force: true });
  }
});

test('kvs trace --help names the tracer build as buildHint does (no bare "make trace-build" when installed)', () => {
  // The help text said "the built tracer (make trace-build)" even in an installed package.
  const installed = mkdtempSync(join(tmpdir(), 'kvs-installed-'));
  try {
    const help = traceHelp(installed + '/');
    assert.ok(help.includes(`built tracer (${buildHint(installed + '/')})`), help);
    assert.doesNotMatch(help, /built tracer \(make trace-build\)/);
    assert.match(traceHelp(resolve(import.meta.dirname, '../..') + '/'), /built tracer \(run: make trace-build\)/);
  } finally {
    rmSync(installed, { recursive: true, force: true });
  }
});
