// `kvs`: the command line. Each subcommand lives in its own module, imported only when that
// subcommand runs: `kvs get` must not pay for loading the server (LMDB, gRPC, uWebSockets.js).
import { ExitCode, UsageError, reportError, wantsJson } from './args.ts';

const USAGE = `kvs — a sharded, Raft-replicated key-value store

Usage: kvs <command> [options]

Commands:
  up       start a local cluster on 127.0.0.1 (data under ./data)
  server   run one replica
  reshard  change the number of shard groups, live
  replica  add or remove a replica of a shard group, live (balance: spread it)
  bench    load generator: closed/open loop, YCSB workloads, HDR latency (source checkout only;
           see docs/benchmarks.md)
  trace    print the messages replicas exchange, one line each (eBPF)
  get      read a key
  put      write a key
  del      delete a key
  scan     list keys in a range
  status   show every replica: role, term, leader, indexes
  version  print the version (also --version)
  operator run the kvctl Kubernetes operator (KVStore resources; docs/operator.md)
  kvstore  kvstore status: a KVStore resource's progress

Run "kvs <command> --help" for a command's options.
Exit codes: 0 ok, 1 key not found, 2 usage error, 3 cluster unreachable or request failed.`;

type Run = (argv: string[]) => Promise<number>;

/** Subcommand → the module that runs it, loaded on demand. */
const COMMANDS: Record<string, () => Promise<Run>> = {
  server: async () => (await import('./server-command.ts')).runServer,
  up: async () => (await import('./up-command.ts')).runUp,
  host: async () => (await import('./host-command.ts')).runHost,
  reshard: async () => (await import('./reshard-command.ts')).runReshard,
  replica: async () => (await import('./replica-command.ts')).runReplica,
  trace: async () => (await import('./trace-command.ts')).runTrace,
  bench: async () => (await import('./bench-command.ts')).runBenchFromCheckout,
  ...Object.fromEntries(
    (['get', 'put', 'del', 'scan', 'status'] as const).map((cmd) => [cmd, async (): Promise<Run> => {
      const { runClientCommand } = await import('./client-commands.ts');
      return (argv) => runClientCommand(cmd, argv);
    }]),
  ),
  version: async () => printVersion,
  // The operator and its Kubernetes client are loaded only when asked for.
  operator: async () => (await import('./operator-command.ts')).runOperator,
  kvstore: async () => (await import('./operator-command.ts')).runKVStore,
};

async function printVersion(): Promise<number> {
  const { KVS_VERSION } = await import('../version.ts');
  console.log(`kvs ${KVS_VERSION}`);
  return ExitCode.Ok;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return cmd ? ExitCode.Ok : ExitCode.Usage;
  }
  if (cmd === '--version' || cmd === '-V') return printVersion();
  const load = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!load) throw new UsageError(`unknown command "${cmd}"\n\n${USAGE}`);
  return (await load())(rest);
}

/** The commands that take --json: with it, their errors are JSON objects too. */
const JSON_COMMANDS = new Set(['get', 'put', 'del', 'scan', 'status']);

/** Commands that print their answer and end; the others run on (a cluster, a replica, a reshard). */
const ONE_SHOT = new Set(['get', 'put', 'del', 'scan', 'status', 'version', 'kvstore', 'help', '--help', '-h', '--version', '-V']);

const argv = process.argv.slice(2);
const json = JSON_COMMANDS.has(argv[0] ?? '') && wantsJson(argv.slice(1));

// The reader of our output went away (kvs scan | head -1): unheard, that EPIPE was a stack trace
// and exit 1 ("key not found"). A one-shot command ends quietly, as a tool SIGPIPE kills; one that
// runs on (kvs up | tee, then tee gone) carries on without its output (kvs trace stops itself).
process.stdout.on('error', () => {
  if (ONE_SHOT.has(argv[0] ?? 'help')) process.exit(process.exitCode ?? ExitCode.Ok);
});

main(argv).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      reportError(json, 'kvs', e.code, json || e.help === undefined ? e.message : `${e.message}\n\n${e.help}`);
      process.exitCode = ExitCode.Usage;
    } else {
      // A KvsError thrown outside a command's own handling keeps its code; anything else is FAILED.
      const code = e instanceof Error && e.name === 'KvsError' ? String((e as Error & { code: unknown }).code) : 'FAILED';
      reportError(json, 'kvs', code, e instanceof Error ? e.message : String(e));
      process.exitCode = ExitCode.Failed;
    }
  },
);
