// Connection and server commands of the RESP door: what redis-cli, redis-benchmark and client
// libraries send around the data commands (PING, HELLO, CLIENT, COMMAND, CONFIG GET, INFO, ...).
// Nothing here touches data, so they run at once whatever else the connection has in flight.
import { globMatch } from './glob.ts';
import { infoSections, infoText, REDIS_COMPAT_VERSION } from './resp-info.ts';
import { RespCommandError, lower, syntaxError, text, type RespCommand, type RespConnection, type RespEnv } from './resp-command.ts';
import { resp, type RespValue } from './resp-codec.ts';

type Run = RespCommand['run'];

function command(name: string, arity: number, flags: string[], group: string, summary: string, run: Run): RespCommand {
  return { name, arity, kind: 'none', flags, firstKey: 0, lastKey: 0, step: 0, group, summary, run };
}

const unknownSubcommand = (cmd: string, sub: Buffer): RespCommandError =>
  new RespCommandError(`ERR unknown subcommand '${text(sub).slice(0, 128)}'. Try ${cmd.toUpperCase()} HELP.`);

const wrongArgs = (cmd: string): RespCommandError => new RespCommandError(`ERR wrong number of arguments for '${cmd}' command`);

const ping: Run = (args) => {
  if (args.length > 2) throw wrongArgs('ping');
  return args.length === 2 ? resp.bulk(args[1]!) : resp.simple('PONG');
};

const quit: Run = (_args, { conn }) => {
  conn.closeAfterReply = true;
  return resp.ok;
};

/** An integer argument as Redis reads one (optional sign, digits), or undefined. */
function integerArg(b: Buffer): number | undefined {
  const t = text(b);
  return /^[+-]?\d{1,18}$/.test(t) ? Number(t) : undefined;
}

/** RESET: the connection as it was when opened (RESP2, no name; the session also leaves MULTI). */
const reset: Run = (_args, { conn }) => {
  conn.version = 2;
  conn.name = '';
  return resp.simple('RESET');
};

const select: Run = (args) => {
  const db = integerArg(args[1]!);
  if (db === undefined) throw new RespCommandError('ERR value is not an integer or out of range');
  if (db !== 0) throw new RespCommandError('ERR DB index is out of range');
  return resp.ok;
};

/** Redis refuses names with spaces or control characters (CLIENT LIST could not be parsed). */
function clientName(b: Buffer): string {
  for (const c of b) if (c < 0x21 || c > 0x7e) throw new RespCommandError('ERR Client names cannot contain spaces, newlines or special characters.');
  return b.toString('latin1');
}

function helloReply({ server, conn }: RespEnv): RespValue {
  const role = server.ctx.status().role === 'leader' ? 'master' : 'replica';
  return resp.map([
    [resp.bulk('server'), resp.bulk('redis')],
    [resp.bulk('version'), resp.bulk(REDIS_COMPAT_VERSION)],
    [resp.bulk('proto'), resp.int(conn.version)],
    [resp.bulk('id'), resp.int(conn.id)],
    [resp.bulk('mode'), resp.bulk('standalone')],
    [resp.bulk('role'), resp.bulk(role)],
    [resp.bulk('modules'), resp.array([])],
  ]);
}

/** HELLO [protover [AUTH user pass] [SETNAME name]]: switches to RESP3 and back; there is no auth. */
const hello: Run = (args, env) => {
  let version = env.conn.version;
  let name: string | undefined;
  if (args.length >= 2) {
    const v = text(args[1]!);
    if (integerArg(args[1]!) === undefined) throw new RespCommandError('ERR Protocol version is not an integer or out of range');
    if (v !== '2' && v !== '3') throw new RespCommandError('NOPROTO unsupported protocol version');
    version = v === '3' ? 3 : 2;
    for (let i = 2; i < args.length; i++) {
      const opt = lower(args[i]!);
      if (opt === 'auth' && i + 2 < args.length) {
        checkCredentials(args[i + 1]!);
        i += 2;
      }
      else if (opt === 'setname' && i + 1 < args.length) name = clientName(args[++i]!);
      else throw new RespCommandError(`ERR Syntax error in HELLO option '${text(args[i]!).slice(0, 64)}'`);
    }
  }
  env.conn.version = version;
  if (name !== undefined) env.conn.name = name;
  return helloReply(env);
};

/**
 * AUTH [user] password, as Redis answers it with no password set: its only user, "default", takes
 * any password (clients configured with a username and password connect); AUTH with a password
 * alone is an error, and any other user does not exist.
 */
const auth: Run = (args) => {
  if (args.length === 2) {
    throw new RespCommandError('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
  }
  if (args.length > 3) throw syntaxError();
  checkCredentials(args[1]!);
  return resp.ok;
};

function checkCredentials(user: Buffer): void {
  if (text(user) !== 'default') throw new RespCommandError('WRONGPASS invalid username-password pair or user is disabled.');
}

function clientLine(c: RespConnection, now: number): string {
  return `id=${c.id} addr=${c.remote} name=${c.name} age=${Math.floor((now - c.openedAt) / 1000)} db=0 resp=${c.version} lib-name=${c.lib}`;
}

const client: Run = (args, { server, conn }) => {
  const sub = lower(args[1]!);
  switch (sub) {
    case 'setname':
      if (args.length !== 3) throw wrongArgs('client|setname');
      conn.name = clientName(args[2]!);
      return resp.ok;
    case 'getname':
      if (args.length !== 2) throw wrongArgs('client|getname');
      return conn.name === '' ? resp.null : resp.bulk(conn.name);
    case 'id':
      if (args.length !== 2) throw wrongArgs('client|id');
      return resp.int(conn.id);
    case 'setinfo':
      if (args.length !== 4) throw wrongArgs('client|setinfo');
      if (lower(args[2]!) === 'lib-name') conn.lib = clientName(args[3]!);
      else if (lower(args[2]!) !== 'lib-ver') throw syntaxError();
      return resp.ok;
    case 'info':
      return resp.verbatim(`${clientLine(conn, Date.now())}\n`);
    case 'list':
      return resp.verbatim(`${server.clientList().map((c) => clientLine(c, Date.now())).join('\n')}\n`);
    case 'no-evict':
    case 'no-touch':
      // Nothing is evicted or touched here; the switch is still checked as Redis checks it.
      if (args.length !== 3) throw wrongArgs(`client|${sub}`);
      if (!['on', 'off'].includes(lower(args[2]!))) throw syntaxError();
      return resp.ok;
    default:
      throw unknownSubcommand('client', args[1]!);
  }
};

function commandInfo(c: RespCommand): RespValue {
  return resp.array([
    resp.bulk(c.name),
    resp.int(c.arity),
    { type: 'set', value: c.flags.map((f) => resp.simple(f)) },
    resp.int(c.firstKey),
    resp.int(c.lastKey),
    resp.int(c.step),
    { type: 'set', value: [resp.simple(`@${c.group}`)] },
    resp.array([]),
    resp.array([]),
    resp.array([]),
  ]);
}

function commandDocs(c: RespCommand): RespValue {
  return resp.map([
    [resp.bulk('summary'), resp.bulk(c.summary)],
    [resp.bulk('since'), resp.bulk('1.0.0')],
    [resp.bulk('group'), resp.bulk(c.group)],
  ]);
}

const commandCmd: Run = (args, { server }) => {
  const all = [...server.commands.values()];
  if (args.length === 1) return resp.array(all.map(commandInfo));
  const sub = lower(args[1]!);
  const named = (): (RespCommand | undefined)[] => args.slice(2).map((a) => server.commands.get(lower(a)));
  switch (sub) {
    case 'count':
      return resp.int(all.length);
    case 'info':
      // No names: every command, as Redis 7 answers.
      return resp.array((args.length > 2 ? named() : all).map((c) => (c ? commandInfo(c) : resp.null)));
    case 'docs': {
      const list = args.length > 2 ? named().filter((c): c is RespCommand => c !== undefined) : all;
      return resp.map(list.map((c) => [resp.bulk(c.name), commandDocs(c)]));
    }
    case 'list':
      return resp.array(commandList(all, args.slice(2)).map((c) => resp.bulk(c.name)));
    default:
      throw unknownSubcommand('command', args[1]!);
  }
};

/** COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]. */
function commandList(all: RespCommand[], filter: Buffer[]): RespCommand[] {
  if (filter.length === 0) return all;
  if (filter.length !== 3 || lower(filter[0]!) !== 'filterby') throw syntaxError();
  const by = lower(filter[1]!);
  const value = filter[2]!;
  switch (by) {
    case 'module':
      return []; // no modules here
    case 'aclcat': {
      // Our commands' groups and flags stand for Redis's ACL categories (@string, @write, @fast...).
      const cat = lower(value).replace(/^@/, '');
      return all.filter((c) => c.group === cat || c.flags.includes(cat === 'read' ? 'readonly' : cat));
    }
    case 'pattern':
      return all.filter((c) => globMatch(value, Buffer.from(c.name)));
    default:
      throw syntaxError();
  }
}

/** The settings tools ask about; redis-benchmark reads `save` and `appendonly` before it starts. */
function configValues(server: RespEnv['server']): [string, string][] {
  return [
    ['save', ''],
    ['appendonly', 'no'],
    ['appendfsync', 'always'],
    ['databases', '1'],
    ['maxmemory', '0'],
    ['cluster-enabled', 'no'],
    ['proto-max-bulk-len', String(server.kv.limits.maxValueBytes)],
  ];
}

const config: Run = (args, { server }) => {
  const sub = lower(args[1]!);
  switch (sub) {
    case 'get': {
      if (args.length < 3) throw wrongArgs('config|get');
      const patterns = args.slice(2);
      const hits = configValues(server).filter(([k]) => patterns.some((p) => globMatch(p, Buffer.from(k), true)));
      return resp.map(hits.map(([k, v]) => [resp.bulk(k), resp.bulk(v)]));
    }
    case 'resetstat':
      // As Redis: INFO stats counts from here again (an OK that reset nothing made the counters lie).
      server.stats.connectionsReceived = 0;
      server.stats.commandsProcessed = 0;
      return resp.ok;
    case 'set':
    case 'rewrite':
      throw new RespCommandError(`ERR CONFIG ${sub.toUpperCase()} is not supported: configure the replica with kvs server flags`);
    default:
      throw unknownSubcommand('config', args[1]!);
  }
};

const info: Run = (args, { server }) => resp.verbatim(infoText(infoSections(args.slice(1).map(text)), server));

const time: Run = () => {
  const us = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
  return resp.array([resp.bulk(String(us / 1_000_000n)), resp.bulk(String(us % 1_000_000n))]);
};

const cluster: Run = () => {
  throw new RespCommandError('ERR This instance has cluster support disabled');
};

export const SERVER_COMMANDS: RespCommand[] = [
  command('ping', -1, ['fast'], 'connection', 'Answers PONG, or echoes its argument.', ping),
  command('echo', 2, ['fast'], 'connection', 'Returns its argument.', (args) => resp.bulk(args[1]!)),
  command('quit', -1, ['fast'], 'connection', 'Closes the connection after the reply.', quit),
  command('reset', 1, ['fast'], 'connection', 'Resets the connection: RESP2, no name, out of MULTI.', reset),
  command('select', 2, ['fast'], 'connection', 'Selects database 0 (the only one).', select),
  command('hello', -1, ['fast'], 'connection', 'Handshake; HELLO 3 switches to RESP3.', hello),
  command('auth', -2, ['fast'], 'connection', 'AUTH default <any password> succeeds (no passwords are set); AUTH <password> fails.', auth),
  command('client', -2, ['fast'], 'connection', 'SETNAME, GETNAME, ID, SETINFO, INFO, LIST.', client),
  command('command', -1, ['loading'], 'server', 'Describes the commands this server supports.', commandCmd),
  command('config', -2, ['admin'], 'server', 'CONFIG GET of a few read-only settings.', config),
  command('info', -1, ['loading'], 'server', 'Server, clients, replication (Raft) and keyspace information.', info),
  command('time', 1, ['fast'], 'server', 'The server time.', time),
  command('cluster', -2, [], 'cluster', 'Fails: this is not a Redis Cluster.', cluster),
];
