// `kvs server`: run one replica until SIGINT/SIGTERM (a leader hands over leadership first).
import { ConfigError, loadConfig, serverFlagOptions, settingsHelp } from '../server/config.ts';
import { KvsServer, serverLogger } from '../server/server.ts';
import { bootstrapCluster } from '../server/bootstrap.ts';
import { startServerTrace } from '../trace/server-trace.ts';
import { ExitCode, UsageError, parse } from './args.ts';

const HELP = `Usage: kvs server --id N --listen HOST:PORT --data DIR --replicas ID=HOST:PORT,... [options]

Runs one replica of a Raft group. Every setting is also read from an environment variable named
like the flag (--request-timeout-ms: KVS_REQUEST_TIMEOUT_MS) and from the YAML file given with
--config (key request-timeout-ms). A flag wins over the variable, the variable over the file.

${settingsHelp()}
Without --resp, --grpc or --http only the native door runs (see docs/doors.md).`;

export async function runServer(argv: string[]): Promise<number> {
  const args = parse(argv, serverFlagOptions(), HELP);
  if (!args) return ExitCode.Ok;
  let config;
  try {
    config = loadConfig(args.values, process.env);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  const log = serverLogger(config);
  const tracer = config.trace ? await startServerTrace({ ...config, trace: config.trace }, log) : undefined;
  // A fatal storage error closes the replica (logged): the process ends with 1 once nothing holds
  // it, and the tracer's capture would (its stop also takes its programs off the interface).
  const onFatal = (): void => {
    process.exitCode = 1;
    tracer?.stop().catch((e: unknown) => log.error('stopping the tracer failed', { error: e }));
  };
  const server = await KvsServer.start(config, { tap: tracer?.tap, log, onFatal }).catch(async (e: unknown) => {
    await tracer?.stop();
    throw e;
  });
  if (server.closed) {
    // A fatal storage error closed it while it started (logged): nothing runs, the process ends.
    await tracer?.stop();
    return 1;
  }
  // `joining`: started outside the group's configuration (--join); it waits for the leader to send it one.
  log.info('listening', { endpoints: server.endpoints, dataDir: config.dataDir, ...(config.join ? { joining: true } : {}) });
  let stopping = false;
  if (config.initialGroups) {
    const placement = config.replicas.map((r) => r.address);
    void bootstrapCluster({ placement, groups: config.initialGroups, log: (l) => log.info(l), stopped: () => stopping || server.closed }); // closed: a fatal storage error
  }
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    void server
      .shutdown()
      .then(() => tracer?.stop())
      .then(() => process.exit(process.exitCode ?? 0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1; // keep running
}
