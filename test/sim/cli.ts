// npm run sim -- --seeds N --from S [--nodes 3|5] [--groups G] [--verbose]
// npm run sim -- --seed X [--nodes 3|5] --trace          (replay one seed with a readable trace)
// npm run sim -- --mutation <flag> --seeds N             (inject a bug from src/raft/mutations.ts or src/replica/mutations.ts)
// Exits non-zero if any seed breaks an invariant.
import { parseArgs } from 'node:util';
import { resetMutations } from '../../src/raft/mutations.ts';
import { replayCommand, runSeed, type RunResult } from './run.ts';
import { resetShellMutations } from '../../src/replica/mutations.ts';
import { resetStorageMutations } from '../../src/storage/mutations.ts';
import { setMutation, targets, type MutationName } from './targets.ts';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    from: { type: 'string' },
    seed: { type: 'string' },
    nodes: { type: 'string' },
    groups: { type: 'string' },
    mutation: { type: 'string' },
    target: { type: 'string' },
    trace: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    'no-lin': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(`usage: npm run sim -- [--seeds N] [--from S] [--seed X] [--nodes 3|5] [--groups G] [--trace] [--verbose]
                      [--mutation ${Object.keys(targets).join('|')}] [--target <same names>] [--no-lin]
  --groups    G Raft groups on the same nodes, each node one process hosting a replica of every group (default 1)
  --mutation  flips the flag (src/raft/mutations.ts or src/replica/mutations.ts) and uses the fault mix aimed at it
  --target    uses that fault mix without flipping the flag`);
  process.exit(0);
}

const from = Number(values.seed ?? values.from ?? 1);
const count = values.seed !== undefined ? 1 : Number(values.seeds ?? 100);
const nodes = values.nodes !== undefined ? Number(values.nodes) : undefined;
if (nodes !== undefined && nodes !== 3 && nodes !== 5) throw new Error('--nodes must be 3 or 5');
const groups = values.groups !== undefined ? Number(values.groups) : undefined;
if (groups !== undefined && !(Number.isInteger(groups) && groups >= 1 && groups <= 16)) throw new Error('--groups must be an integer from 1 to 16');
const mutation = values.mutation as MutationName | undefined;
const targetName = (values.target ?? mutation) as MutationName | undefined;
if (targetName !== undefined && !(targetName in targets)) throw new Error(`unknown mutation/target ${targetName}`);
const tweak = targetName !== undefined ? targets[targetName].tweak : undefined;
const extra = `${nodes ? ` --nodes ${nodes}` : ''}${groups !== undefined && groups > 1 ? ` --groups ${groups}` : ''}${mutation ? ` --mutation ${mutation}` : targetName ? ` --target ${targetName}` : ''}`;

resetMutations();
resetShellMutations();
resetStorageMutations();
if (mutation !== undefined) setMutation(mutation, true);

const started = Date.now();
const failures: RunResult[] = [];
const stats: Record<string, number> = {};
let undecided = 0;
let events = 0;
let worstRecovery = -1;
for (let seed = from; seed < from + count; seed++) {
  const r = await runSeed(seed, {
    ...(nodes ? { nodes } : {}),
    ...(groups ? { groups } : {}),
    ...(tweak ? { tweak } : {}),
    ...(values.trace ? { onLine: (l: string) => console.log(l) } : {}),
    skipLinearizability: values['no-lin'],
  });
  events += r.events;
  worstRecovery = Math.max(worstRecovery, r.recovery);
  if (r.linearizability === 'unknown') undecided++;
  for (const [k, v] of Object.entries(r.stats)) stats[k] = (stats[k] ?? 0) + v;
  if (values.verbose || values.trace || count === 1) {
    const p = r.profile;
    console.log(
      `seed ${seed}: ${r.ok ? 'ok' : `VIOLATION ${r.violation?.invariant}`}  ${p.nodes} nodes${p.groups > 1 ? ` x ${p.groups} groups` : ''} [${p.name}]  ` +
        `${r.ticks.toFixed(0)} ticks, ${r.events} events, ${r.ops} ops (${r.pending} pending), ` +
        `linearizability ${r.linearizability}, recovered in ${r.recovery.toFixed(1)} ticks, digest ${r.digest}`,
    );
  }
  if (!r.ok) {
    failures.push(r);
    console.log(`\nFAIL seed ${seed}: ${r.violation?.invariant} at t=${r.violation?.at.toFixed(3)}`);
    console.log(indent(r.violation?.detail ?? ''));
    console.log(`  replay: ${replayCommand(seed, extra)}\n`);
  } else if (!values.verbose && count >= 20 && (seed - from + 1) % Math.ceil(count / 10) === 0) {
    console.error(`... ${seed - from + 1}/${count} seeds, ${failures.length} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}
resetMutations();
resetShellMutations();
resetStorageMutations();

const secs = (Date.now() - started) / 1000;
console.log(
  `\n${count} seed(s) from ${from}${extra}: ${count - failures.length} ok, ${failures.length} failed` +
    `${undecided ? `, ${undecided} with linearizability undecided (search budget)` : ''}; ` +
    `${events} events in ${secs.toFixed(1)} s` +
    (worstRecovery >= 0 ? `; slowest recovery after healing ${worstRecovery.toFixed(1)} ticks` : ''),
);
if (values.verbose) {
  for (const [k, v] of Object.entries(stats).sort()) console.log(`  ${k}: ${v}`);
}
if (failures.length > 0) {
  const byRule = new Map<string, number[]>();
  for (const f of failures) byRule.set(f.violation?.invariant ?? '?', [...(byRule.get(f.violation?.invariant ?? '?') ?? []), f.seed]);
  for (const [rule, seeds] of byRule) console.log(`  ${rule}: seeds ${seeds.join(', ')}`);
  process.exitCode = 1;
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
