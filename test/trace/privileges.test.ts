// Without CAP_BPF / CAP_NET_ADMIN the capture must say why and let the caller
// fall back, never crash. Children run with capabilities dropped by setpriv.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadAddon } from '../../src/trace/native.ts';

const fixture = fileURLToPath(new URL('./fixtures/trace-child.ts', import.meta.url));

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root to drop capabilities from';
  try {
    execFileSync('setpriv', ['--version']);
  } catch {
    return 'setpriv (util-linux) not installed';
  }
  const loaded = loadAddon();
  if (!loaded.ok) return loaded.reason;
  return undefined;
}
const skip = skipReason();
if (skip !== undefined && process.env.KVS_TRACE_REQUIRE === '1') throw new Error(`privilege tests cannot run: ${skip}`);
if (skip !== undefined) console.log(`# privilege tests skipped: ${skip}`);

interface Probe {
  reason?: string;
  chosen: string;
  warnings: string[];
  forced: string;
}

function probe(boundingSet: string): Probe {
  const out = execFileSync(
    'setpriv',
    [
      '--inh-caps=-all',
      '--ambient-caps=-all',
      `--bounding-set=${boundingSet}`,
      '--',
      process.execPath,
      '--import',
      'tsx',
      fixture,
      'probe',
    ],
    { encoding: 'utf8' },
  );
  return JSON.parse(out.trim().split('\n').at(-1) as string) as Probe;
}

describe('capture without privileges', { skip }, () => {
  it('reports the missing capabilities and falls back to the tap with one warning', () => {
    const p = probe('-all');
    assert.equal(p.reason, `missing CAP_BPF and CAP_NET_ADMIN (CapEff 0)`);
    assert.equal(p.chosen, 'tap');
    assert.deepEqual(p.warnings, [
      'trace: eBPF capture unavailable (missing CAP_BPF and CAP_NET_ADMIN (CapEff 0)); using the in-process tap',
    ]);
    // past the pre-check, the kernel refuses; the reason names the libbpf step and errno
    assert.match(p.forced, /^bpf_object__load failed: Operation not permitted \(errno 1\)/);
  });

  it('names only what is missing', () => {
    const p = probe('-all,+net_admin');
    assert.equal(p.reason, 'missing CAP_BPF (CapEff 1000)');
    assert.equal(p.chosen, 'tap');
    assert.equal(p.warnings.length, 1);
  });
});
