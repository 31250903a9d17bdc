// Small helpers shared by the subcommands: option parsing with clear errors, exit codes.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const ExitCode = { Ok: 0, NotFound: 1, Usage: 2, Failed: 3 } as const;

export class UsageError extends Error {
  override readonly name = 'UsageError';
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
    throw new UsageError(`${(e as Error).message}${hint}\n\n${help}`);
  }
  if (parsed.values.help) {
    console.log(help);
    return undefined;
  }
  const [min, max] = typeof positionals === 'number' ? [positionals, positionals] : positionals;
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    throw new UsageError(`expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${n}\n\n${help}`);
  }
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
}
