// `kvs server` configuration. Every setting is one line of SETTINGS below, and from that line come
// its command-line flag (`--request-timeout-ms`), its environment variable (`KVS_REQUEST_TIMEOUT_MS`),
// its YAML key (`request-timeout-ms`), its check and its line in `kvs server --help`.
// Precedence: flag > environment > YAML file (--config / KVS_CONFIG) > default. Unknown YAML keys and
// unknown KVS_* variables are errors naming the nearest valid one: a typo must not be ignored.
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

import { hostProblem } from '../address/address.ts';
import { completeDnsSuffix } from '../address/cluster-dns.ts';
import type { GroupInfo } from '../placement/config.ts';
import type { PeerAddress } from '../transport/peers.ts';
import { podIdentity } from './pod-identity.ts';
import { MAX_VALUE_BYTES } from '../wire/client-codec.ts';
import type { ServerTraceSettings } from '../trace/server-trace.ts';
import { LOG_FORMATS, LOG_LEVELS, defaultLogFormat, type LogFormat, type LogLevel } from '../log/logger.ts';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** One setting. `T` is its value's type once checked; `check` gets a flag/env string or a YAML value. */
export interface Setting<T> {
  /** The flag's name without `--`; also the YAML key, and (upper-cased) the environment variable. */
  flag: string;
  /** Placeholder in --help (absent: a boolean switch). */
  arg?: string;
  help: string;
  /** Absent and no default: the setting is required (unless `optional`). */
  default?: T;
  /** Shown in --help instead of `default`. */
  defaultText?: string;
  check: (v: unknown, name: string) => T;
  /** `--config` only: it names the file, so it cannot be a key in it. */
  notInFile?: boolean;
}

const U32 = 0xffff_ffff;

// Builders: the kinds of value a setting can hold.
const int = (o: Omit<Setting<number>, 'check' | 'arg'> & { min: number; max: number; arg?: string }): Setting<number> => ({
  arg: 'N',
  ...o,
  check: (v, name) => checkInt(name, v, o.min, o.max),
});
const bool = (o: Omit<Setting<boolean>, 'check' | 'default'>): Setting<boolean> => ({ ...o, default: false, check: checkBool });
const text = (o: Omit<Setting<string>, 'check'>): Setting<string> => ({ ...o, check: checkString });
const optionalText = (o: Omit<Setting<string | undefined>, 'check' | 'default'>): Setting<string | undefined> => ({ ...o, default: undefined, check: checkString });
const address = (o: Omit<Setting<string>, 'check' | 'arg'>): Setting<string> => ({ arg: 'HOST:PORT', ...o, check: checkAddress });
const optionalAddress = (o: Omit<Setting<string | undefined>, 'check' | 'arg' | 'default'>): Setting<string | undefined> => ({ arg: 'HOST:PORT', ...o, default: undefined, check: checkAddress });
const addresses = (o: Omit<Setting<string[]>, 'check' | 'arg' | 'default'>): Setting<string[]> => ({ arg: 'LIST', ...o, default: [], check: checkAddresses });
const choice = <C extends string>(o: Omit<Setting<C>, 'check' | 'arg'> & { choices: readonly C[] }): Setting<C> => ({
  arg: o.choices.join('|'),
  ...o,
  check: (v, name) => {
    if (!(o.choices as readonly unknown[]).includes(v)) throw new ConfigError(`${name} must be ${o.choices.join(' or ')}, got "${String(v)}"`);
    return v as C;
  },
});

/**
 * Every `kvs server` setting, in --help order. The key is the ServerConfig field. To add a setting:
 * add a line here (the field appears in ServerConfig with the checked type), then use it.
 */
export const SETTINGS = {
  config: { ...optionalText({ flag: 'config', arg: 'FILE', help: 'YAML file with these settings, keys spelled like the flags (tick-ms: 50)' }), notInFile: true },
  id: int({ flag: 'id', min: 1, max: U32, help: "this replica's id (unique in the cluster, >= 1)" }),
  group: int({ flag: 'group', min: 0, max: U32, default: 0, help: 'Raft group id' }),
  listen: address({ flag: 'listen', help: 'native door: clients and replica links' }),
  dataDir: text({ flag: 'data', arg: 'DIR', help: 'data directory (created if missing)' }),
  sharedData: optionalText({ flag: 'shared-data', arg: 'DIR', help: "keep a new replica's store in DIR: one LMDB environment shared with\nthe other replicas of this process, one flush for all (kvs up does\nthis); --data records where, and later starts follow that record" }),
  replicas: { flag: 'replicas', arg: 'LIST', default: [], help: 'every replica of the group, this one included: 1=127.0.0.1:7001,2=...', check: checkReplicas } as Setting<PeerAddress[]>,
  placement: addresses({ flag: 'placement', help: "placement group's native addresses: makes this a shard group replica" }),
  join: bool({ flag: 'join', help: 'start outside the group\'s configuration and wait to be added with\n"kvs replica add" (an empty data directory; --replicas then optional)' }),
  tickMs: int({ flag: 'tick-ms', min: 1, max: 10_000, default: 50, help: 'Raft tick in ms' }),
  electionTicks: int({ flag: 'election-ticks', min: 3, max: 1000, default: 10, help: 'election timeout in ticks' }),
  heartbeatTicks: int({ flag: 'heartbeat-ticks', min: 1, max: 1000, default: 1, help: 'heartbeat interval in ticks' }),
  quietAfterTicks: int({ flag: 'quiet-after-ticks', min: 0, max: 1_000_000, default: 20, help: 'idle ticks after which a group\'s leader heartbeats once per election\ntimeout (0: never); see docs/raft.md' }),
  requestTimeoutMs: int({ flag: 'request-timeout-ms', min: 10, max: 600_000, default: 5000, help: 'per-request deadline in ms' }),
  // 4026: LMDB's largest key in lmdb-js builds (see docs/storage.md).
  maxKeyBytes: int({ flag: 'max-key-bytes', min: 1, max: 4026, default: 4026, help: 'largest key' }),
  maxValueBytes: int({ flag: 'max-value-bytes', min: 0, max: MAX_VALUE_BYTES, default: 1 << 20, help: 'largest value' }),
  logTail: int({ flag: 'log-tail', min: 0, max: 10_000_000, default: 5000, help: 'log entries kept after compaction, for followers briefly behind' }),
  handoffWave: int({ flag: 'handoff-wave', min: 1, max: 4096, default: 64, help: 'partitions pulled per resharding wave: smaller waves pause each\nmoving partition for less time' }),
  resp: optionalAddress({ flag: 'resp', help: 'RESP (Redis protocol) door: redis-cli, redis-benchmark, Redis clients' }),
  respWriteLingerMs: int({ flag: 'resp-write-linger-ms', arg: 'MS', min: 0, max: 100, default: 2, help: 'RESP door: how long a write batch may wait for the clients just answered\n(docs/doors.md); 0: never' }),
  grpc: optionalAddress({ flag: 'grpc', help: 'gRPC door (service protos.KV in protos/kv.proto)' }),
  http: optionalAddress({ flag: 'http', help: 'HTTP door: /healthz /readyz /metrics /v1/status /v1/kv/{key},\nand the native protocol over WebSocket at /v1/ws' }),
  trace: bool({ flag: 'trace', help: 'print every message this replica sends to its peers, one line each,\non stdout (eBPF, or the in-process tap without CAP_BPF+CAP_NET_ADMIN)' }),
  traceIface: optionalText({ flag: 'trace-iface', arg: 'IF', help: "interface for eBPF (default: lo for loopback, else the listen address's)" }),
  traceFormat: choice<ServerTraceSettings['format']>({ flag: 'trace-format', choices: ['text', 'json'], default: 'text', help: 'trace line format' }),
  logFormat: choice<LogFormat>({ flag: 'log-format', choices: LOG_FORMATS, default: defaultLogFormat(), defaultText: 'json, text when stderr is a terminal', help: 'log lines on stderr (docs/operations.md)' }),
  logLevel: choice<LogLevel>({ flag: 'log-level', choices: LOG_LEVELS, default: 'info', help: 'lowest level logged: debug, info, warn or error' }),
  // On Kubernetes (docs/kubernetes.md, src/server/pod-identity.ts).
  podName: optionalText({ flag: 'pod-name', arg: 'NAME', help: 'StatefulSet pod "<set>-<ordinal>" (set "placement" or "shard-N"): id, group,\n--replicas and --placement follow from it unless given' }),
  dnsSuffix: optionalText({ flag: 'dns-suffix', arg: 'SUFFIX', help: 'with --pod-name: what follows "<pod>.<set>." in the pods\' DNS names:\n<namespace>.svc (the cluster domain is added from /etc/resolv.conf), or in full' }),
  groupSize: int({ flag: 'group-size', min: 0, max: 99, default: 3, help: 'with --pod-name: the founding pods of a group (ordinals below it); a pod\nat or past it joins with an empty volume (--join), else recovers' }),
  placementSet: optionalText({ flag: 'placement-set', arg: 'NAME', help: "with --pod-name: a shard replica's placement StatefulSet (placement)" }),
  placementSize: int({ flag: 'placement-size', min: 0, max: 99, default: 0, defaultText: '--group-size', help: 'with --placement-set: pods of the placement StatefulSet' }),
  bootstrapGroups: optionalText({ flag: 'bootstrap-groups', arg: 'LIST', help: 'with --pod-name, on a placement replica: write these shard sets\n(shard-0,shard-1,...) as the first configuration unless one exists' }),
} satisfies Record<string, Setting<unknown>>;

type SettingValues = { [K in keyof typeof SETTINGS]: (typeof SETTINGS)[K] extends Setting<infer T> ? T : never };

/** The checked settings; the three trace settings are folded into `trace` (set only with --trace). */
export interface ServerConfig extends Omit<SettingValues, 'config' | 'trace' | 'traceIface' | 'traceFormat'> {
  trace?: ServerTraceSettings;
  /** Placement replica on Kubernetes: the shard groups of the first configuration (--bootstrap-groups). */
  initialGroups?: GroupInfo[];
  /**
   * A founder pod with an empty data directory: before it starts, it asks the other founders
   * whether the group has run (src/server/rejoin.ts). Set by loadConfig on Kubernetes only.
   */
  rejoinCheck?: boolean;
  /** The group has run without this replica's data: start outside the configuration (rejoin.ts). */
  lostData?: boolean;
  /** The data directory was empty (or absent) at this start (RaftConfig.blankStart comes from the store's mark). */
  dataEmpty?: boolean;
}

type Name = keyof typeof SETTINGS;
const NAMES = Object.keys(SETTINGS) as Name[];
const setting = (n: Name): Setting<unknown> => SETTINGS[n];

/** `request-timeout-ms` → `KVS_REQUEST_TIMEOUT_MS`. */
export function envName(flag: string): string {
  return `KVS_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/**
 * KVS_* variables that are not `kvs server` settings but are read elsewhere, so a replica started
 * with them in its environment is not refused: client commands' endpoints, the build's commit (for
 * /metrics), tracer overrides (docs/tracing.md), the HTTP door implementation, test switches.
 */
export const OTHER_KVS_VARIABLES = ['KVS_ENDPOINTS', 'KVS_BUILD_COMMIT', 'KVS_TRACE_CAPTURE', 'KVS_TRACE_ADDON', 'KVS_TRACE_BPF_OBJ', 'KVS_TRACE_LIBBPF_DEBUG', 'KVS_TRACE_REQUIRE', 'KVS_NETNS_REQUIRE', 'KVS_HTTP_IMPL',
  // Test switches that .ci/run or a test sets for the whole run (replicas inherit them).
  'KVS_K8S_REQUIRE', 'KVS_NETNS_CONNTRACK', 'KVS_E2E_PROGRESS'];

/** parseArgs options for every setting. */
export function serverFlagOptions(): Record<string, { type: 'string' | 'boolean' }> {
  return Object.fromEntries(NAMES.map((n) => [setting(n).flag, { type: setting(n).arg === undefined ? ('boolean' as const) : ('string' as const) }]));
}

/** The settings' part of `kvs server --help`: one entry per setting, its default, and its variable. */
export function settingsHelp(): string {
  const col = 29;
  return NAMES.map((n) => {
    const s = setting(n);
    const left = `  --${s.flag}${s.arg ? ` ${s.arg}` : ''}`;
    const dflt = s.defaultText ?? (s.default === undefined || s.default === false || (Array.isArray(s.default) && s.default.length === 0) ? undefined : String(s.default));
    const lines = `${s.help}${dflt === undefined ? '' : ` (default ${dflt})`}`.split('\n');
    const first = left.length < col ? left.padEnd(col) + lines[0] : `${left}\n${' '.repeat(col)}${lines[0]}`;
    return [first, ...lines.slice(1).map((l) => ' '.repeat(col) + l)].join('\n');
  }).join('\n');
}

type Raw = Record<string, string | boolean | undefined>;

/**
 * Builds the config: `flags` as parsed from argv (by flag name), `env` (only KVS_* names are read),
 * and the YAML file the flag or KVS_CONFIG names.
 */
export function loadConfig(flags: Raw, env: Record<string, string | undefined> = {}, resolvConf: () => string | undefined = readResolvConf): ServerConfig {
  checkEnvNames(env);
  const configPath = present(flags.config) ? String(flags.config) : present(env.KVS_CONFIG) ? env.KVS_CONFIG : undefined;
  const file = configPath === undefined ? {} : readFile(configPath);

  const values = {} as Record<Name, unknown>;
  const given = new Set<Name>();
  const missing: Name[] = [];
  for (const n of NAMES) {
    const s = setting(n);
    const [raw, name] = present(flags[s.flag])
      ? [flags[s.flag], `--${s.flag}`]
      : present(env[envName(s.flag)])
        ? [env[envName(s.flag)], envName(s.flag)]
        : present(file[s.flag])
          ? [file[s.flag], `${s.flag} (in ${configPath})`]
          : [undefined, `--${s.flag}`];
    if (raw !== undefined) {
      values[n] = s.check(raw, name);
      given.add(n);
    } else if ('default' in s) values[n] = s.default;
    else missing.push(n);
  }
  // `<namespace>.svc` gets the cluster domain the kubelet put in the search list: the peers' names
  // are then fully qualified on any domain, and on cluster.local the ones earlier versions persisted.
  if (values.podName && typeof values.dnsSuffix === 'string') values.dnsSuffix = completeDnsSuffix(values.dnsSuffix, resolvConf());
  // On Kubernetes the pod name stands for the identity settings that are not given (pod-identity.ts).
  const dir = values.dataDir as string | undefined;
  const dataEmpty = dir === undefined || !existsSync(dir) || readdirSync(dir).length === 0;
  const pod = podIdentity({ ...(values as SettingValues), explicitGroup: given.has('group') ? (values.group as number) : undefined, dataEmpty });
  for (const [n, v] of Object.entries(pod?.settings ?? {}) as [Name, unknown][]) if (!given.has(n)) values[n] = v;
  for (const n of missing) {
    if (values[n] === undefined) throw new ConfigError(`--${setting(n).flag} is required (or ${envName(setting(n).flag)}, or "${setting(n).flag}:" in the --config file)`);
  }
  const v = values as SettingValues;
  const { config: _config, trace, traceIface, traceFormat, ...rest } = v;
  const cfg: ServerConfig = { ...rest, ...(trace ? { trace: { format: traceFormat, ...(traceIface ? { iface: traceIface } : {}) } } : {}), ...(pod?.initialGroups ? { initialGroups: pod.initialGroups } : {}) };

  if (cfg.join) {
    if (cfg.placement.length === 0) throw new ConfigError('--join needs --placement: a joining replica learns its group from the cluster configuration');
    // A joining replica needs no list: it learns the others from the placement configuration.
    if (!cfg.replicas.some((r) => r.id === cfg.id)) cfg.replicas = [...cfg.replicas, { id: cfg.id, address: cfg.listen }];
  } else if (cfg.replicas.length === 0) {
    throw new ConfigError('--replicas is required (e.g. 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003)');
  }
  if (cfg.heartbeatTicks >= cfg.electionTicks) throw new ConfigError('heartbeat-ticks must be smaller than election-ticks');
  if (!cfg.replicas.some((r) => r.id === cfg.id)) {
    throw new ConfigError(`--replicas must list this replica (id ${cfg.id}) among ${cfg.replicas.map((r) => r.id).join(', ')}`);
  }
  const ids = new Set<number>();
  for (const r of cfg.replicas) {
    if (ids.has(r.id)) throw new ConfigError(`replica id ${r.id} is listed twice in --replicas`);
    ids.add(r.id);
  }
  checkDataDir(cfg.dataDir);
  if (cfg.sharedData !== undefined) checkDataDir(cfg.sharedData);
  // Kubernetes replaces a lost volume with an empty one: a founder cannot tell that from a new group.
  if (pod && dataEmpty && !cfg.join && cfg.replicas.length > 1) cfg.rejoinCheck = true;
  if (dataEmpty) cfg.dataEmpty = true;
  return cfg;
}

function readResolvConf(): string | undefined {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return undefined;
  }
}

/** Given: a flag, a non-empty variable, a non-null YAML value. (An empty variable counts as unset, as in a pod spec.) */
function present(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '';
}

function checkEnvNames(env: Record<string, string | undefined>): void {
  const known = [...NAMES.map((n) => envName(setting(n).flag)), ...OTHER_KVS_VARIABLES];
  for (const name of Object.keys(env)) {
    if (name.startsWith('KVS_') && !known.includes(name)) {
      throw new ConfigError(`unknown environment variable ${name} (did you mean ${nearest(name, known)}?)`);
    }
  }
}

function readFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(e as Error).message}`);
  }
  if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) throw new ConfigError(`config file ${path} is not a YAML mapping`);
  const file = (parsed ?? {}) as Record<string, unknown>;
  const keys = NAMES.filter((n) => !setting(n).notInFile).map((n) => setting(n).flag);
  for (const key of Object.keys(file)) {
    if (!keys.includes(key)) throw new ConfigError(`unknown key "${key}" in config file ${path} (did you mean "${nearest(key, keys)}"?)`);
  }
  return file;
}

/** The candidate closest to `word`: same letters ignoring case and -/_ first (tickMs → tick-ms), else edit distance. */
export function nearest(word: string, candidates: string[]): string {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const same = candidates.find((c) => norm(c) === norm(word));
  if (same) return same;
  let best = candidates[0] ?? '';
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(norm(word), norm(c));
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer in [${min}, ${max}], got "${String(v)}"`);
  return n;
}

function checkBool(v: unknown, name: string): boolean {
  if (v === true || v === 'true' || v === '1') return true;
  if (v === false || v === 'false' || v === '0') return false;
  throw new ConfigError(`${name} must be true or false, got "${String(v)}"`);
}

function checkString(v: unknown, name: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${name} must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function checkAddress(v: unknown, name: string): string {
  const s = checkString(v, name);
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`${name} must be host:port with a port in 1..65535, got "${s}"`);
  }
  const problem = hostProblem(s.slice(0, i));
  if (problem) throw new ConfigError(`${name} must be host:port, got "${s}": ${problem}`);
  return s;
}

/** "a:1,b:2" or a YAML list. */
function checkAddresses(v: unknown, name: string): string[] {
  const list = Array.isArray(v) ? v.map(String) : String(v).split(',');
  return list.filter((a) => a.trim() !== '').map((a) => checkAddress(a.trim(), name));
}

/** "1=127.0.0.1:7001,2=127.0.0.1:7002" or a YAML list of {id, address}. */
function checkReplicas(v: unknown, name: string): PeerAddress[] {
  if (Array.isArray(v)) {
    return v.map((r: { id?: unknown; address?: unknown }) => ({ id: checkInt(`${name} id`, r?.id, 1, U32), address: checkAddress(r?.address, `${name} address`) }));
  }
  return String(v)
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((item) => {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new ConfigError(`${name} item "${item}" must be id=host:port`);
      return { id: checkInt(`${name} id`, item.slice(0, eq).trim(), 1, U32), address: checkAddress(item.slice(eq + 1).trim(), `${name} address`) };
    });
}

function checkDataDir(dir: string): void {
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.R_OK | constants.W_OK);
  } catch (e) {
    throw new ConfigError(`data directory ${dir} is not usable: ${(e as Error).message}`);
  }
}
