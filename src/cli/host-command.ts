// `kvs host`: one process running several replicas (of different groups) for `kvs up --processes`.
// Each replica is a whole `kvs server` — its own ports, data directory and Raft group — so clients,
// peers and tools see the same cluster as with one process per replica; the replicas share the
// process's event loop, heap and runtime, which is what a replica mostly costs at idle, and its
// links: one connection to each other process carries every pair of replicas (link-hub.ts).
// Commands arrive on the IPC channel (host-protocol.ts); the host ends when its supervisor does.
import { ConfigError, loadConfig, serverFlagOptions } from '../server/config.ts';
import { KvsServer } from '../server/server.ts';
import { LinkHub } from '../transport/link-hub.ts';
import { createLogger } from '../log/logger.ts';
import { ExitCode, UsageError, parse } from './args.ts';
import { isHostCommand, type HostCommand, type HostReport } from './host-protocol.ts';
import { HostReplicas } from './host-replicas.ts';

const HELP = `Usage: kvs host

Runs the replicas that "kvs up --processes N" asks it to over its IPC channel; not for direct use.`;

export async function runHost(argv: string[]): Promise<number> {
  if (!parse(argv, {}, HELP)) return ExitCode.Ok;
  const send = process.send?.bind(process);
  if (!send) throw new UsageError('kvs host runs under "kvs up --processes N" (it needs an IPC channel)');
  // With a callback: once the supervisor is gone (disconnect: stopAll), a report to the closed
  // channel is dropped; without one it was an unhandled 'error' that crashed the host mid-stop.
  const report = (r: HostReport): void => void send(r, undefined, undefined, () => {});
  const replicas = new HostReplicas(report);
  // One link hub for the process: its replicas reach another process's replicas over one connection.
  const hub = new LinkHub();

  const start = (c: Extract<HostCommand, { type: 'start' }>): Promise<void> =>
    replicas.start(
      c.id,
      async (onFatal, signal) => {
        const args = parse(c.argv, serverFlagOptions(), HELP);
        const config = loadConfig(args?.values ?? {}, process.env);
        if (config.trace || config.initialGroups) throw new ConfigError('--trace and --initial-groups need a process of their own (kvs server)');
        const prefix = `[${c.label}] `;
        const log = createLogger({
          format: config.logFormat,
          level: config.logLevel,
          bindings: { group: config.group, replica: config.id },
          // Text lines get the label `kvs up` gives a replica's own stderr; JSON lines name group and replica.
          ...(config.logFormat === 'text' ? { write: (line: string) => void process.stderr.write(prefix + line) } : {}),
        });
        const server = await KvsServer.start(config, { log, hub, onFatal, signal });
        // Closed by a fatal storage error while it started (logged; HostReplicas reports it): not listening.
        if (!server.closed) log.info('listening', { endpoints: server.endpoints, dataDir: config.dataDir, ...(config.join ? { joining: true } : {}) });
        return server;
      },
      (e) => (e instanceof ConfigError || e instanceof UsageError ? ExitCode.Usage : 1),
    );

  // Several may come (Ctrl-C's SIGINT, then kvs up's SIGTERM): the first stops; kvs up kills
  // after 5 s. No replica starts once stopping, which stopAll would not wait for.
  let stopping = false;
  const stopAll = async (): Promise<never> => {
    stopping = true;
    await replicas.stopAll();
    process.exit(process.exitCode ?? 0);
  };

  process.on('message', (m: unknown) => {
    if (!isHostCommand(m)) return;
    if (m.type === 'start') {
      if (!stopping) void start(m);
    } else if (m.type === 'stop') void replicas.stop(m.id);
    else replicas.running(m.id)?.replica.transferLeadership(m.to); // a no-op unless it leads
  });
  // The supervisor is gone (even killed -9): nobody would restart or stop these replicas.
  process.on('disconnect', () => void stopAll());
  process.on('SIGTERM', () => void stopAll());
  process.on('SIGINT', () => void stopAll());
  return -1; // keep running
}
