// The server's log: one event per line on stderr, JSON (for collectors: one object per line with
// ts, level, group, replica, msg and the event's fields) or text (for a terminal). A small logger
// of our own rather than pino: measured as fast per line for what a replica logs (bench/log.ts,
// docs/operations.md), and no dependency. The line builder is pure; only `write` does I/O.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';
export type LogFields = Record<string, unknown>;

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text'];

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose every line also carries these fields (e.g. the door or subsystem). */
  child(bindings: LogFields): Logger;
}

export interface LoggerOptions {
  format: LogFormat;
  /** Lines below this level are dropped. */
  level?: LogLevel;
  /** Fields on every line, first after ts and level: group and replica for a server. */
  bindings?: LogFields;
  /** Where finished lines go (with their newline); stderr by default. */
  write?: (line: string) => void;
  now?: () => number;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const RESERVED = new Set(['ts', 'level', 'msg']);

/** JSON when stderr is not a terminal (a pipe, a file, a container runtime), text when it is. */
export function defaultLogFormat(isTTY: boolean | undefined = process.stderr.isTTY): LogFormat {
  return isTTY ? 'text' : 'json';
}

export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? ((line: string) => void process.stderr.write(line));
  const now = opts.now ?? Date.now;
  const min = RANK[opts.level ?? 'info'];
  const build = opts.format === 'json' ? jsonLine : textLine;
  const make = (bindings: LogFields): Logger => {
    const format = build(bindings); // the bindings' part of a line is built once per logger
    const emit = (level: LogLevel) => (msg: string, fields?: LogFields) => {
      if (RANK[level] < min) return;
      write(format(now(), level, msg, fields));
    };
    return {
      debug: emit('debug'),
      info: emit('info'),
      warn: emit('warn'),
      error: emit('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make(opts.bindings ?? {});
}

/** Drops everything: for tests and embedders that do not want a log. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

/** Errors become their message, bigints numbers-as-strings: a line always serializes. */
function plain(v: unknown): unknown {
  if (v instanceof Error) return v.message;
  if (typeof v === 'bigint') return v.toString();
  return v;
}

function replacer(_key: string, v: unknown): unknown {
  return plain(v);
}

type LineFormat = (ts: number, level: LogLevel, msg: string, fields?: LogFields) => string;

function field(k: string, v: unknown): string {
  return `,${JSON.stringify(k)}:${JSON.stringify(v, replacer) ?? 'null'}`;
}

/** `{"ts":"2026-…Z","level":"info","group":0,"replica":1,"msg":"…",…fields}` and a newline. */
export function jsonLine(bindings: LogFields): LineFormat {
  let bound = '';
  for (const k in bindings) if (!RESERVED.has(k)) bound += field(k, bindings[k]);
  return (ts, level, msg, fields) => {
    let j = `{"ts":"${new Date(ts).toISOString()}","level":"${level}"${bound},"msg":${JSON.stringify(msg)}`;
    if (fields) for (const k in fields) if (!RESERVED.has(k) && !(k in bindings)) j += field(k, fields[k]);
    return `${j}}\n`;
  };
}

/** `2026-…Z INFO  g0 r1 msg key=value …` and a newline; the message's own newlines are escaped. */
export function textLine(bindings: LogFields): LineFormat {
  const who = whoText(bindings);
  return (ts, level, msg, fields) => {
    let t = `${new Date(ts).toISOString()} ${level.toUpperCase().padEnd(5)}${who ? ` ${who}` : ''} ${oneLine(msg)}`;
    const extra = { ...bindings, ...fields };
    for (const k in extra) {
      if (RESERVED.has(k) || k === 'group' || k === 'replica') continue;
      const v = plain(extra[k]);
      const s = typeof v === 'string' ? v : (JSON.stringify(v, replacer) ?? 'undefined');
      t += ` ${k}=${/^[^\s"=]+$/.test(s) ? s : JSON.stringify(s)}`;
    }
    return `${t}\n`;
  };
}

function whoText(b: LogFields): string {
  const parts: string[] = [];
  if (b.group !== undefined) parts.push(`g${String(b.group)}`);
  if (b.replica !== undefined) parts.push(`r${String(b.replica)}`);
  return parts.join(' ');
}

function oneLine(s: string): string {
  return s.includes('\n') || s.includes('\r') ? JSON.stringify(s).slice(1, -1) : s;
}

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
}

export function isLogFormat(v: unknown): v is LogFormat {
  return typeof v === 'string' && (LOG_FORMATS as readonly string[]).includes(v);
}
