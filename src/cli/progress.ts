// Progress of a long CLI operation: a `\r`-redrawn bar on a terminal; elsewhere (a pipe, a file,
// CI logs) plain lines, one when the count changes and at most one a second, plus the last one.

export interface Progress {
  update(done: number, total: number): void;
  /** Ends the bar's line; prints the last count if it was held back. */
  finish(): void;
}

export function progress(opts: { isTTY: boolean; write: (text: string) => void; what: string; now?: () => number; everyMs?: number }): Progress {
  const now = opts.now ?? Date.now;
  const everyMs = opts.everyMs ?? 1000;
  let last: [number, number] | undefined;
  let printed: number | undefined;
  let printedAt = -Infinity;
  const line = (done: number, total: number): void => {
    opts.write(`${done}/${total} ${opts.what}\n`);
    printed = done;
    printedAt = now();
  };
  return {
    update(done, total) {
      last = [done, total];
      if (opts.isTTY) {
        const width = 30;
        const filled = total === 0 ? width : Math.round((done / total) * width);
        opts.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total} ${opts.what}`);
        return;
      }
      if (done !== printed && (done === total || now() - printedAt >= everyMs)) line(done, total);
    },
    finish() {
      if (opts.isTTY) opts.write('\n');
      else if (last && last[0] !== printed) line(...last);
    },
  };
}
