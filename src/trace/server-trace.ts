// `kvs server --trace`: a tracer beside the replica for the replica's own traffic — what it sends
// on its replica links. eBPF on the interface its address lives on (lo for a local cluster, the
// pod's interface on Kubernetes), or the in-process tap when eBPF cannot run (one warning line).
import { networkInterfaces } from 'node:os';
import { splitHostPort, type ReplicaAddress } from './address-book.ts';
import type { TraceFormat } from './format.ts';
import { Tracer, type TracerOptions } from './tracer.ts';
import type { Logger } from '../log/logger.ts';

export interface ServerTraceSettings {
  /** Interface for eBPF (default: the one holding the listen address; lo for loopback). */
  iface?: string;
  format: TraceFormat;
}

export interface ServerTraceConfig {
  id: number;
  group: number;
  listen: string;
  replicas: readonly { id: number; address: string }[];
  trace: ServerTraceSettings;
}

const LOOPBACK = /^(127\.|::1$|localhost$)/;

/** The interface a host address lives on: lo for loopback, else the one carrying it, else the first non-internal one (IPv4 first). */
export function interfaceFor(host: string, nics = networkInterfaces()): string {
  if (LOOPBACK.test(host)) return 'lo';
  const all = Object.entries(nics);
  for (const [name, addrs] of all) if (addrs?.some((a) => a.address === host)) return name;
  for (const [name, addrs] of all) if (addrs?.some((a) => !a.internal && a.family === 'IPv4')) return name;
  // An IPv6-only pod (the manifests listen on [::]): its interface has external IPv6 addresses only.
  for (const [name, addrs] of all) if (addrs?.some((a) => !a.internal && a.family === 'IPv6')) return name;
  return 'lo';
}

export function addressesOf(iface: string, nics = networkInterfaces()): string[] {
  return (nics[iface] ?? []).map((a) => a.address);
}

/** Tracer options for one replica: every group port (on lo each replica has its own), sent by this replica. */
export function serverTraceOptions(cfg: ServerTraceConfig, env: NodeJS.ProcessEnv = process.env): TracerOptions {
  const iface = cfg.trace.iface ?? interfaceFor(splitHostPort(cfg.listen).host);
  const replicas: ReplicaAddress[] = cfg.replicas.map((r) => ({ id: r.id, group: cfg.group, address: r.address }));
  const ports = replicas.map((r) => splitHostPort(r.address).port);
  const forced = env.KVS_TRACE_CAPTURE;
  return {
    replicas,
    self: cfg.id,
    capture: forced === 'tap' || forced === 'ebpf' ? forced : 'auto',
    iface,
    ports: [Math.min(...ports), Math.max(...ports)],
    // Everything this replica sends leaves through egress, on lo and on a pod's interface alike.
    directions: 'egress',
    localAddrs: iface === 'lo' ? [] : addressesOf(iface),
    format: cfg.trace.format,
    label: `g${cfg.group} r${cfg.id}`,
  };
}

/** Starts the tracer and says in the replica's log which source it uses. */
export async function startServerTrace(cfg: ServerTraceConfig, log: Logger): Promise<Tracer> {
  const opts = { ...serverTraceOptions(cfg), warn: (line: string) => log.warn(line) };
  const tracer = await Tracer.start(opts);
  if (tracer.attach !== undefined) {
    const a = tracer.attach;
    log.info(`trace: eBPF on ${opts.iface} (${a.mode}), ports ${opts.ports[0]}-${opts.ports[1]}, progs ${a.ingressProgId}/${a.egressProgId}`);
  } else if (opts.capture === 'tap') {
    log.info('trace: in-process tap (KVS_TRACE_CAPTURE=tap)');
  } // else the fallback's warning line has said it
  return tracer;
}
