// `kvs server` configuration: flags and an optional YAML file (flags win), validated up front with
// errors that say which setting is wrong and why.
import { accessSync, constants, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

import type { GroupInfo } from '../placement/config.ts';
import type { PeerAddress } from '../transport/peers.ts';
import { withPodIdentity } from './pod-identity.ts';
import type { ServerTraceSettings } from '../trace/server-trace.ts';

export interface ServerConfig {
  id: number;
  group: number;
  dataDir: string;
  /** host:port of the native door (clients and replica links). */
  listen: string;
  /** Every replica of the group, this one included: id → native address. */
  replicas: PeerAddress[];
  /**
   * `--join`: start outside the group's Raft configuration (never campaigns) and wait to be added
   * by `kvs replica add` (docs/membership.md). Only for an empty data directory to matter: a
   * replica with a log keeps the configuration it has.
   */
  join: boolean;
  /** Native addresses of the placement group: set for a replica of a shard group (sharded cluster). */
  placement: string[];
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  requestTimeoutMs: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  /** Log entries kept after compaction, for followers that are briefly behind. */
  logTail: number;
  /** Partitions a shard leader pulls per hand-off wave (each pauses writes for one wave's transfer). */
  handoffWave: number;
  /** host:port of the optional front doors (absent: not started); see docs/doors.md. */
  resp?: string;
  grpc?: string;
  /** HTTP, with the WebSocket native door at /v1/ws on the same port. */
  http?: string;
  /** `--trace`: print this replica's replica-link traffic (docs/tracing.md). */
  trace?: ServerTraceSettings;
  /** Placement replica on Kubernetes: the shard groups of the first configuration (pod-identity.ts). */
  initialGroups?: GroupInfo[];
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export const DEFAULTS = {
  group: 0,
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 1,
  requestTimeoutMs: 5000,
  maxKeyBytes: 4026, // LMDB's largest key in lmdb-js builds (see docs/storage.md)
  maxValueBytes: 1 << 20,
  logTail: 5000,
  handoffWave: 64,
};

/** Builds the config from parsed flags (strings) and an optional YAML file. */
export function loadConfig(flags: Record<string, string | undefined>): ServerConfig {
  let file: Record<string, unknown> = {};
  if (flags.config) {
    let text: string;
    try {
      text = readFileSync(flags.config, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${flags.config}: ${(e as Error).message}`);
    }
    const parsed: unknown = parseYaml(text);
    if (parsed !== null && typeof parsed !== 'object') throw new ConfigError(`config file ${flags.config} is not a YAML mapping`);
    file = (parsed ?? {}) as Record<string, unknown>;
  }
  const pick = withPodIdentity((name: string, flag = name): unknown => flags[flag] ?? file[name]);

  const id = int('id', pick('id'), 1, 0xffff_ffff);
  const join = flag(pick('join'));
  const listen = address('listen', pick('listen'));
  // A joining replica needs no list: it learns the others from the placement configuration.
  const listed = join && pick('replicas') === undefined ? [] : replicas(pick('replicas'));
  const cfg: ServerConfig = {
    id,
    group: int('group', pick('group') ?? DEFAULTS.group, 0, 0xffff_ffff),
    dataDir: str('data', pick('dataDir', 'data')),
    listen,
    replicas: join && !listed.some((r) => r.id === id) ? [...listed, { id, address: listen }] : listed,
    join,
    placement: endpoints('placement', pick('placement')),
    tickMs: int('tick-ms', pick('tickMs', 'tick-ms') ?? DEFAULTS.tickMs, 1, 10_000),
    electionTicks: int('election-ticks', pick('electionTicks', 'election-ticks') ?? DEFAULTS.electionTicks, 3, 1000),
    heartbeatTicks: int('heartbeat-ticks', pick('heartbeatTicks', 'heartbeat-ticks') ?? DEFAULTS.heartbeatTicks, 1, 1000),
    requestTimeoutMs: int('request-timeout-ms', pick('requestTimeoutMs', 'request-timeout-ms') ?? DEFAULTS.requestTimeoutMs, 10, 600_000),
    maxKeyBytes: int('max-key-bytes', pick('maxKeyBytes', 'max-key-bytes') ?? DEFAULTS.maxKeyBytes, 1, 4026),
    maxValueBytes: int('max-value-bytes', pick('maxValueBytes', 'max-value-bytes') ?? DEFAULTS.maxValueBytes, 0, 4 << 20),
    logTail: int('log-tail', pick('logTail', 'log-tail') ?? DEFAULTS.logTail, 0, 10_000_000),
    handoffWave: int('handoff-wave', pick('handoffWave', 'handoff-wave') ?? DEFAULTS.handoffWave, 1, 4096),
    ...doorAddresses(pick),
    ...traceSettings(pick),
    ...(pick('initialGroups') ? { initialGroups: pick('initialGroups') as GroupInfo[] } : {}),
  };
  if (join && cfg.placement.length === 0) throw new ConfigError('--join needs --placement: a joining replica learns its group from the cluster configuration');
  if (cfg.heartbeatTicks >= cfg.electionTicks) throw new ConfigError('heartbeat-ticks must be smaller than election-ticks');
  if (!cfg.replicas.some((r) => r.id === id)) {
    throw new ConfigError(`--replicas must list this replica (id ${id}) among ${cfg.replicas.map((r) => r.id).join(', ')}`);
  }
  const ids = new Set<number>();
  for (const r of cfg.replicas) {
    if (ids.has(r.id)) throw new ConfigError(`replica id ${r.id} is listed twice in --replicas`);
    ids.add(r.id);
  }
  checkDataDir(cfg.dataDir);
  return cfg;
}

function doorAddresses(pick: (name: string) => unknown): Pick<ServerConfig, 'resp' | 'grpc' | 'http'> {
  const out: Pick<ServerConfig, 'resp' | 'grpc' | 'http'> = {};
  for (const door of ['resp', 'grpc', 'http'] as const) {
    const v = pick(door);
    if (v !== undefined && v !== null && v !== '') out[door] = address(door, v);
  }
  return out;
}

/** `--trace` (flag or `trace: true`), `--trace-iface`, `--trace-format text|json`. */
function traceSettings(pick: (name: string, flag?: string) => unknown): Pick<ServerConfig, 'trace'> {
  const on = pick('trace');
  if (on !== true && on !== 'true') return {};
  const format = pick('traceFormat', 'trace-format') ?? 'text';
  if (format !== 'text' && format !== 'json') throw new ConfigError(`--trace-format must be text or json, got "${String(format)}"`);
  const iface = pick('traceIface', 'trace-iface');
  return { trace: { format, ...(iface ? { iface: str('trace-iface', iface) } : {}) } };
}

function flag(v: unknown): boolean {
  return v === true || v === 'true';
}

function int(name: string, v: unknown, min: number, max: number): number {
  if (v === undefined || v === null || v === '') throw new ConfigError(`--${name} is required`);
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`--${name} must be an integer in [${min}, ${max}], got "${String(v)}"`);
  return n;
}

function str(name: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(`--${name} is required`);
  return v;
}

export function address(name: string, v: unknown): string {
  const s = str(name, v);
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`--${name} must be host:port with a port in 1..65535, got "${s}"`);
  }
  return s;
}

/** "1=127.0.0.1:7001,2=127.0.0.1:7002" or a YAML list of {id, address}. */
function replicas(v: unknown): PeerAddress[] {
  if (v === undefined) throw new ConfigError('--replicas is required (e.g. 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003)');
  if (Array.isArray(v)) {
    return v.map((r: { id?: unknown; address?: unknown }) => ({ id: int('replicas[].id', r.id, 1, 0xffff_ffff), address: address('replicas[].address', r.address) }));
  }
  return String(v)
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((item) => {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new ConfigError(`--replicas item "${item}" must be id=host:port`);
      return { id: int('replicas id', item.slice(0, eq).trim(), 1, 0xffff_ffff), address: address('replicas address', item.slice(eq + 1).trim()) };
    });
}

function endpoints(name: string, v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  const list = Array.isArray(v) ? v.map(String) : String(v).split(',');
  return list.map((a) => address(name, a.trim()));
}

function checkDataDir(dir: string): void {
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.R_OK | constants.W_OK);
  } catch (e) {
    throw new ConfigError(`data directory ${dir} is not usable: ${(e as Error).message}`);
  }
}
