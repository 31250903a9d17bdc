// `make bench-profile`: where a leader's time goes. Starts one 3-replica group under
// `node --cpu-prof`, drives a workload at it, stops it gracefully (V8 writes the profile at exit),
// and summarises the leader's main-thread profile: self time per area of the code and the top
// functions. LMDB's write thread and the kernel's fsync are not in a JS profile; the process CPU
// from /proc (printed alongside) includes them.
//
//   node --import tsx bench/profile.ts [--workload write] [--duration 10] [--inflight 64 | --rate 1000]
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { gitCommit, kvsSystem } from './compare/systems.ts';
import { preloadKeys, runGenerator } from './load/generator.ts';
import { humanLine, resultLine } from './load/summary.ts';
import { DEFAULT_SPEC, parseWorkload, type LoadSpec } from './load/workload.ts';
import { machine, printResult } from './machine.ts';
import { profileMarkdown, summarizeProfile, type CpuProfile } from './report/cpuprofile.ts';
import { snapshotServer, startKvs } from './systems/kvs.ts';
import { stopAll } from './systems/procs.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const { values: v } = parseArgs({
  options: {
    workload: { type: 'string', default: 'write' },
    duration: { type: 'string', default: '10' },
    inflight: { type: 'string', default: String(DEFAULT_SPEC.inflight) },
    rate: { type: 'string', default: '0' }, // writes/s offered (open loop); 0: closed loop
    out: { type: 'string', default: join(ROOT, 'bench/results') },
  },
});

const dir = mkdtempSync(join(tmpdir(), 'kvs-profile-'));
const profDir = join(dir, 'prof');
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

async function main(): Promise<void> {
  mkdirSync(profDir);
  console.log(`# node --import tsx bench/profile.ts ${process.argv.slice(2).join(' ')}`);
  console.log(`# ${machine()}`);
  // Profiles name the snapshot's files: make paths relative to it.
  const tree = snapshotServer(join(dir, 'tree'));
  const kvs = await startKvs({ dir: join(dir, 'kvs'), basePort: 23900, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] });
  const sys = kvsSystem('kvs', kvs, 'native');
  const spec: LoadSpec = { ...DEFAULT_SPEC, workload: parseWorkload(v.workload!), inflight: Number(v.inflight), rate: Number(v.rate), warmupS: 1, durationS: Number(v.duration) };
  if (spec.workload !== 'write') await preloadKeys('native', await sys.target(), spec);
  const leaderBefore = (await kvs.leaders())[0]!;
  const r = await runGenerator({ protocol: 'native', target: await sys.target(), spec, procs: 1, conns: 1, sessions: true, linearizable: true, preload: false, serverPids: sys.pids(), fork: true });
  const leaderAfter = (await kvs.leaders())[0]!;
  // The measured window on the profiles' clock (CLOCK_MONOTONIC µs, as process.hrtime).
  const hrNowUs = Number(process.hrtime.bigint() / 1000n);
  const from = hrNowUs - (Date.now() - r.measuredFrom) * 1000;
  const window: [number, number] = [from, from + spec.durationS * 1e6];
  // Per-replica CPU over the whole life of the processes, for the leader/follower split.
  const line = resultLine('profile', 'kvs', 'native', spec, r);
  console.log(humanLine(line));
  await kvs.stop(); // SIGTERM: graceful exit, so V8 writes the profiles
  // One file per thread (CPU.<date>.<time>.<pid>.<tid>.<seq>); tid 0 is the main thread, the
  // others are tsx's module-loader threads.
  const files = readdirSync(profDir).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  const leaderFile = files.find((f) => f.includes(`.${leaderBefore.proc.current().pid}.0.`));
  if (!leaderFile) throw new Error(`no profile for the leader (pid ${leaderBefore.proc.current().pid}) among ${files.join(', ')}`);
  const load = (f: string, top: number): ReturnType<typeof summarizeProfile> => summarizeProfile(JSON.parse(readFileSync(join(profDir, f), 'utf8')) as CpuProfile, tree, top, window);
  const summary = load(leaderFile, 25);
  const followers = files.filter((f) => f !== leaderFile).map((f) => load(f, 5));
  const commit = await gitCommit();
  const md = [
    `# Leader profile — ${new Date().toISOString()}, commit ${commit}`,
    '',
    `- machine: ${machine()}`,
    `- command: \`make bench-profile PROFILE_ARGS="${process.argv.slice(2).join(' ')}"\``,
    `- load: ${humanLine(line)}`,
    `- leader: replica ${leaderBefore.id}${leaderAfter.id !== leaderBefore.id ? ` (leadership moved to ${leaderAfter.id} during the run: the profile mixes roles)` : ''}`,
    `- followers busy: ${followers.map((f) => `${f.busyMs} ms of ${f.wallMs} ms`).join(', ')} (main thread, measured window)`,
    '',
    profileMarkdown(summary, `Leader main thread, ${spec.workload} workload, ${spec.rate > 0 ? `${spec.rate}/s offered` : `${spec.inflight} in flight`}`),
  ].join('\n');
  mkdirSync(v.out!, { recursive: true });
  const outFile = join(v.out!, `${new Date().toISOString().slice(0, 10)}-${commit}-profile-${spec.workload}.md`);
  writeFileSync(outFile, md);
  console.log(md);
  console.log(`wrote ${outFile}`);
  printResult({ ...line, leader_busy_ms: summary.busyMs, profile_ms: summary.wallMs, top_area: summary.areas[0]?.name ?? '', top_function: summary.functions[0]?.name ?? '' });
}

main()
  .catch(async (e: unknown) => {
    console.error(`bench-profile: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 1;
    await stopAll(2000);
  })
  .finally(() => process.exit());
