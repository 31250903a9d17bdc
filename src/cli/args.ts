// Small helpers shared by the subcommands: option parsing with clear errors, exit codes, and how an
// error is reported (a line of text, or with --json one JSON object scripts can parse).
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const ExitCode = { Ok: 0, NotFound: 1, Usage: 2, Failed: 3 } as const;

export class UsageError extends Error {
  override readonly name = 'UsageError';
  /**
   * `code`: the error's code in --json output (USAGE, or TOO_LARGE for a key or value over the
   * limits); `help`: the command's usage, printed after the message as text but left out of JSON.
   */
  constructor(
    message: string,
    readonly code = 'USAGE',
    readonly help?: string,
  ) {
    super(message);
  }
}

/**
 * Whether `argv` asks for --json output: the flag before any `--` (after it, "--json" is a key or
 * value). Looked at on the raw arguments, so an error in parsing them is reported as JSON too.
 */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * Reports an error on stderr: `{"error":{"code":...,"message":...}}` on one line with --json (the
 * shape of the HTTP door's errors), else `prefix: message`.
 */
export function reportError(json: boolean, prefix: string, code: string, message: string): void {
  if (json) console.error(JSON.stringify({ error: { code, message } }));
  else console.error(`${prefix}: ${message}`);
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses argv; prints `help` and returns undefined for --help. */
export function parse(argv: string[], options: Options, help: string, positionals: number | [number, number] = 0): { values: Record<string, string | boolean | undefined>; positionals: string[] } | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    // `kvs put counter -1` reads -1 as an option: say how to pass such a key or value.
    const hint = (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? '\n(a key or value that starts with "-" goes after "--": kvs put counter -- -1)' : '';
    throw new UsageError(`${(e as Error).message}${hint}`, 'USAGE', help);
  }
  if (parsed.values.help) {
    console.log(help);
    return undefined;
  }
  const [min, max] = typeof positionals === 'number' ? [positionals, positionals] : positionals;
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    throw new UsageError(`expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${n}`, 'USAGE', help);
  }
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
}
