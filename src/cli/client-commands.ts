// `kvs get|put|del|scan|status`: client commands. Readable output by default, --json for scripts.
import { KvsClient, KvsError, MAX_TIMER_MS } from '../client/client.ts';
import { addressProblem } from '../address/address.ts';
import { ShardedClient } from '../client/sharded-client.ts';
import { STARTING_FILE, dataReplicas, placementEndpoints, readCluster, type ClusterReplica } from './cluster-file.ts';
import { describeDown, notServing, type Verdict } from './cluster-ready.ts';
import type { ClusterConfig } from '../placement/config.ts';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES, type KeyValue } from '../wire/index.ts';
import { ExitCode, UsageError, parse, reportError } from './args.ts';
import { jsonBytes, readAll } from './bytes-output.ts';

export type ClientCommand = 'get' | 'put' | 'del' | 'scan' | 'status';

const COMMON = `  --endpoints LIST     host:port,... of native doors (default: $KVS_ENDPOINTS, else ./data/cluster.json)
  --placement LIST     host:port,... of the placement group: route each key straight to the shard
                       group that serves it (smart client), --endpoints only as a fallback
  --smart              the same, with the placement group from cluster.json
  --data DIR           where cluster.json is (default ./data)
  --json               machine-readable output: keys and values as "key"/"value" strings when they
                       are UTF-8, else as "keyBase64"/"valueBase64"; an error is one JSON object
                       on stderr, {"error":{"code":...,"message":...}} (same exit codes)
  --timeout-ms N       deadline per request, retries included (default 5000)`;

const HELP: Record<ClientCommand, string> = {
  get: `Usage: kvs get KEY [--stale] [options]\n\nWrites the value's bytes unchanged to stdout (a newline after it only on a terminal);\nexit code 1 if the key does not exist.\n  --stale              serve from the contacted replica without a read barrier\n${COMMON}`,
  put: `Usage: kvs put KEY VALUE [options]\n       kvs put KEY - [options]     (the value is all of stdin, byte for byte)\n\nA key or value that starts with "-" goes after "--": kvs put counter -- -1\n${COMMON}`,
  del: `Usage: kvs del KEY [options]\n\n${COMMON}`,
  scan: `Usage: kvs scan [START [END]] [--limit N] [--stale] [options]\n\nLists keys in [START, END) in key order (all keys by default), one KEY<tab>VALUE line each,\nbytes unchanged (use --json when keys or values may hold tabs, newlines or non-UTF-8 bytes).\n  --limit N            at most N keys (default 1000)\n  --stale              serve from the contacted replica without a read barrier\n${COMMON}`,
  status: `Usage: kvs status [options]\n\nShows every replica: id, group, role, term, leader, commit and applied index, epoch, and whether\nit is blank (its data directory was replaced and it has not caught up: change no membership\nmeanwhile; '-' for a replica of a version that does not say).\n${COMMON}`,
};

const OPTIONS = {
  endpoints: { type: 'string' as const },
  placement: { type: 'string' as const },
  smart: { type: 'boolean' as const },
  data: { type: 'string' as const },
  json: { type: 'boolean' as const },
  stale: { type: 'boolean' as const },
  limit: { type: 'string' as const },
  'timeout-ms': { type: 'string' as const },
};

const ARGS: Record<ClientCommand, number | [number, number]> = { get: 1, put: 2, del: 1, scan: [0, 2], status: 0 };
const NL = Buffer.from('\n');
const TAB = Buffer.from('\t');

/** --endpoints, else KVS_ENDPOINTS, else undefined (then ./data/cluster.json). */
function endpointList(flag: string | boolean | undefined, env: NodeJS.ProcessEnv): string[] | undefined {
  const list = typeof flag === 'string' ? flag : env.KVS_ENDPOINTS;
  return list === undefined || list === '' ? undefined : list.split(',').map((s) => s.trim()).filter(Boolean);
}

export async function runClientCommand(cmd: ClientCommand, argv: string[]): Promise<number> {
  const args = parse(argv, OPTIONS, HELP[cmd], ARGS[cmd]);
  if (!args) return ExitCode.Ok;
  const v = args.values;
  const json = v.json === true;
  const dataDir = String(v.data ?? 'data');
  const given = endpointList(v.endpoints, process.env);
  // cluster.json appears once the cluster serves; `kvs status` also reports on one still starting.
  let fileReplicas = readCluster(dataDir);
  if (fileReplicas.length === 0 && cmd === 'status') fileReplicas = readCluster(dataDir, STARTING_FILE);
  const endpoints = given ?? dataReplicas(fileReplicas).map((r) => r.endpoints.native);
  const smart = typeof v.placement === 'string' || v.smart === true;
  const placement = typeof v.placement === 'string' ? v.placement.split(',').filter(Boolean) : smart ? placementEndpoints(fileReplicas) : [];
  if (smart && placement.length === 0) throw new UsageError('no placement group: pass --placement host:port,... or start a cluster with "kvs up"');
  if (!smart && endpoints.length === 0) throw new UsageError('no endpoints: pass --endpoints host:port,..., set KVS_ENDPOINTS, or start a cluster with "kvs up"');
  // A bad address is the caller's mistake (exit 2), not a request that failed (found in review).
  for (const [flag, list] of [['--endpoints', given ?? []], ['--placement', typeof v.placement === 'string' ? placement : []]] as const) {
    for (const a of list) {
      const problem = addressProblem(a);
      if (problem) throw new UsageError(`${flag}: ${problem}`);
    }
  }
  // Node decodes arguments as UTF-8 and puts U+FFFD for bytes that are not: stored, that is another
  // key or value than the one typed, and distinct keys collide (found by an outside test).
  for (const [i, p] of args.positionals.entries()) {
    if (p.includes('\uFFFD')) {
      throw new UsageError(`argument ${i + 1} is not valid UTF-8, and the command line cannot carry its bytes${cmd === 'put' && i === 1 ? ': give the value on stdin with "-"' : ''}`);
    }
  }
  if ((cmd === 'put' || cmd === 'del') && args.positionals[0] === '') throw new UsageError('the key is empty: a key is 1 byte or more');
  // Over the limits no server takes is the caller's mistake (exit 2), found before anything is sent
  // (an outside test got exit 3, "request failed", for a 4027-byte key). A scan's bounds too: a
  // server refuses a bound longer than any key.
  for (const [i, p] of args.positionals.entries()) {
    const isValue = cmd === 'put' && i === 1;
    const n = Buffer.byteLength(p);
    if (isValue && n > MAX_VALUE_BYTES) throw new UsageError(`value of ${n} bytes exceeds the limit of ${MAX_VALUE_BYTES} bytes (the most a server can be set to take)`, 'TOO_LARGE');
    if (!isValue && n > MAX_KEY_BYTES) throw new UsageError(`${cmd === 'scan' ? (i === 0 ? 'START' : 'END') : 'key'} of ${n} bytes exceeds the limit of ${MAX_KEY_BYTES} bytes`, 'TOO_LARGE');
  }
  // Every flag is checked before any request: an empty --timeout-ms or --limit is not the default.
  const timeoutMs = v['timeout-ms'] !== undefined ? Number(v['timeout-ms']) : 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMER_MS) throw new UsageError(`--timeout-ms must be a positive integer, at most ${MAX_TIMER_MS}`);
  const limit = v.limit !== undefined ? Number(v.limit) : 1000;
  if (!Number.isInteger(limit) || limit <= 0) throw new UsageError('--limit must be a positive integer');
  // stdin is read before connecting, and no further than the limit: a longer value is refused as above.
  const value = cmd === 'put' && args.positionals[1] === '-' ? await readAll(process.stdin, MAX_VALUE_BYTES) : args.positionals[1];
  if (value === undefined && cmd === 'put') throw new UsageError(`the value on stdin exceeds the limit of ${MAX_VALUE_BYTES} bytes (the most a server can be set to take)`, 'TOO_LARGE');
  const client = smart ? new ShardedClient({ placement, endpoints, timeoutMs }) : new KvsClient({ endpoints, timeoutMs });
  const consistency = v.stale ? 'stale' : 'linearizable';
  const [a, b] = args.positionals;
  try {
    switch (cmd) {
      case 'get': {
        const value = await client.get(a!, { consistency });
        if (json) console.log(JSON.stringify({ key: a, ...(value === null ? { value: null } : jsonBytes('value', value)), found: value !== null }));
        else if (value !== null) process.stdout.write(process.stdout.isTTY ? Buffer.concat([value, NL]) : value);
        else console.error(`(not found: ${a})`);
        return value === null ? ExitCode.NotFound : ExitCode.Ok;
      }
      case 'put':
        await client.put(a!, value!);
        console.log(json ? JSON.stringify({ ok: true }) : 'OK');
        return ExitCode.Ok;
      case 'del':
        await client.delete(a!);
        console.log(json ? JSON.stringify({ ok: true }) : 'OK');
        return ExitCode.Ok;
      case 'scan': {
        const items: KeyValue[] = [];
        for await (const kv of client.scanAll(a ?? '', b ?? null, { pageSize: Math.min(limit, 1000), consistency })) {
          items.push(kv);
          if (items.length >= limit) break;
        }
        if (json) console.log(JSON.stringify({ items: items.map((kv) => ({ ...jsonBytes('key', kv.key), ...jsonBytes('value', kv.value) })) }));
        else if (items.length > 0) process.stdout.write(Buffer.concat(items.flatMap((kv) => [kv.key, TAB, kv.value, NL])));
        return ExitCode.Ok;
      }
      case 'status': {
        const all = given ? [] : fileReplicas;
        const statusEndpoints = all.length > 0 ? all.map((r) => r.endpoints.native) : endpoints;
        return await printStatus(client, statusEndpoints, all, json);
      }
    }
  } catch (e) {
    if (e instanceof KvsError) {
      reportError(json, `kvs ${cmd}`, e.code, json ? e.message : `${e.code}: ${e.message}`);
      // A key or value over this server's limits (which may be below the most any server takes,
      // checked above) is bad input as well, not a failed request: retrying cannot help.
      return e.code === 'TOO_LARGE' ? ExitCode.Usage : ExitCode.Failed;
    }
    throw e;
  } finally {
    client.close();
  }
}

async function printStatus(client: KvsClient, endpoints: string[], known: ClusterReplica[], json: boolean): Promise<number> {
  const placement = placementEndpoints(known);
  const seen = await Promise.all(
    endpoints.map(async (ep) => {
      try {
        return { ep, s: await client.status(ep) };
      } catch (e) {
        return { ep, error: (e as Error).message };
      }
    }),
  );
  const rows = seen.map(({ ep, s, error }) =>
    s
      ? { endpoint: ep, id: s.replicaId, group: s.groupId, role: s.role, term: s.term, leader: s.leaderId, commit: s.commitIndex, applied: s.appliedIndex, epoch: s.epoch, ...(s.blank === undefined ? {} : { blank: s.blank }), reachable: true }
      : { endpoint: ep, reachable: false, error },
  );
  // Loaded only here: the other commands need none of the resharding code.
  const config = placement.length > 0 ? await (await import('../resharding/admin.ts')).readConfig(placement).catch(() => undefined) : undefined;
  // The same verdict `kvs up` waits for before it says ready (with the cluster file: a sharded
  // cluster): serving when every group serves from a majority, degraded when some replica does not.
  const verdict: Verdict | undefined =
    known.length > 0
      ? notServing(
          seen.map(({ ep, s }) => {
            const r = known.find((x) => x.endpoints.native === ep);
            return { id: r?.id ?? s?.replicaId ?? 0, endpoint: ep, group: r?.group ?? s?.groupId ?? 0, placement: r?.role === 'placement', status: s };
          }),
          config,
        )
      : undefined;
  const degraded = verdict?.down.map(describeDown) ?? [];
  if (json) {
    const serving = verdict ? { serving: verdict.reasons.length === 0, notServing: verdict.reasons, degraded } : {};
    console.log(JSON.stringify({ replicas: rows, ...(config ? { cluster: summary(config) } : {}), ...serving }));
  } else {
    console.log(['ENDPOINT', 'ID', 'GROUP', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'EPOCH', 'BLANK'].join('\t'));
    for (const r of rows) {
      if (!r.reachable) console.log(`${r.endpoint}\tunreachable: ${'error' in r ? r.error : ''}`);
      else if ('id' in r) console.log([r.endpoint, r.id, r.group, r.role, r.term, r.leader || '-', r.commit, r.applied, r.epoch, r.blank === undefined ? '-' : r.blank ? 'yes' : 'no'].join('\t'));
    }
    const blank = rows.filter((r) => 'blank' in r && r.blank === true).map((r) => ('id' in r ? `${r.id} (group ${r.group})` : r.endpoint));
    if (blank.length > 0) {
      console.log(`\nblank: ${blank.join(', ')}: data directory replaced, not caught up yet; change no membership until it has (docs/raft.md)`);
    }
    if (config) {
      const s = summary(config);
      console.log(`\ncluster epoch ${s.epoch}, ${s.partitions} partitions (group 0 is the placement group)`);
      for (const g of s.groups) console.log(`  shard group ${g.id}: ${g.partitions} partitions, ${g.replicas} replicas`);
      console.log(s.moving === 0 ? '  no hand-off in progress' : `  hand-off in progress: ${s.moving} partitions moving (${s.moves})`);
    }
    if (verdict) {
      if (verdict.reasons.length > 0) console.log(`\nnot serving yet: ${[...verdict.reasons, ...degraded].join('; ')}`);
      else if (degraded.length > 0) console.log(`\nserving, degraded: every group has a leader known by a majority; not serving: ${degraded.join('; ')}`);
      else console.log('\nserving: every group has a leader, every replica applied the configuration');
    }
  }
  return rows.every((r) => r.reachable) ? ExitCode.Ok : ExitCode.Failed;
}

function summary(c: ClusterConfig) {
  const pairs = new Map<string, number>();
  for (const m of c.moves) pairs.set(`${m.from}→${m.to}`, (pairs.get(`${m.from}→${m.to}`) ?? 0) + 1);
  return {
    epoch: c.epoch,
    partitions: c.partitions,
    groups: c.groups.map((g) => ({ id: g.id, replicas: g.replicas.length, partitions: c.owner.filter((o) => o === g.id).length })),
    moving: c.moves.length,
    moves: [...pairs].map(([k, n]) => `${k}: ${n}`).join(', '),
  };
}
