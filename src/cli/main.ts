// `kvs`: the command line. Each subcommand lives in its own module; this file only dispatches.
import { runClientCommand, CLIENT_COMMANDS } from './client-commands.ts';
import { runServer } from './server-command.ts';
import { runUp } from './up-command.ts';
import { runReshard } from './reshard-command.ts';
import { runReplica } from './replica-command.ts';
import { runTrace } from './trace-command.ts';
import { ExitCode, UsageError } from './args.ts';

const USAGE = `kvs — a sharded, Raft-replicated key-value store

Usage: kvs <command> [options]

Commands:
  up       start a local cluster on 127.0.0.1 (data under ./data)
  server   run one replica
  reshard  change the number of shard groups, live
  replica  add or remove a replica of a shard group, live
  bench    load generator: closed/open loop, YCSB workloads, HDR latency (see docs/benchmarks.md)
  trace    print the messages replicas exchange, one line each (eBPF)
  get      read a key
  put      write a key
  del      delete a key
  scan     list keys in a range
  status   show every replica: role, term, leader, indexes
  operator run the kvctl Kubernetes operator (KVStore resources; docs/operator.md)
  kvstore  kvstore status: a KVStore resource's progress

Run "kvs <command> --help" for a command's options.
Exit codes: 0 ok, 1 key not found, 2 usage error, 3 cluster unreachable or request failed.`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return cmd ? ExitCode.Ok : ExitCode.Usage;
  }
  if (cmd === 'server') return runServer(rest);
  if (cmd === 'up') return runUp(rest);
  if (cmd === 'reshard') return runReshard(rest);
  if (cmd === 'replica') return runReplica(rest);
  // The load generator lives in bench/ (it also drives etcd and Redis); loaded only when asked for.
  if (cmd === 'bench') return (await import('../../bench/load.ts')).runBench(rest);
  if (cmd === 'trace') return runTrace(rest);
  // The operator and its Kubernetes client are loaded only when asked for.
  if (cmd === 'operator') return (await import('./operator-command.ts')).runOperator(rest);
  if (cmd === 'kvstore') return (await import('./operator-command.ts')).runKVStore(rest);
  if ((CLIENT_COMMANDS as readonly string[]).includes(cmd)) return runClientCommand(cmd as (typeof CLIENT_COMMANDS)[number], rest);
  throw new UsageError(`unknown command "${cmd}"\n\n${USAGE}`);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      console.error(`kvs: ${e.message}`);
      process.exitCode = ExitCode.Usage;
    } else {
      console.error(`kvs: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = ExitCode.Failed;
    }
  },
);
