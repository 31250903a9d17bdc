// Failed writes on a full file system, told apart from a failing device. LMDB reports a short
// write as EIO ("Input/output error"), and the log's write may come back short before any errno:
// alone, either sends an operator after the hardware instead of the disk space.
import fs from 'node:fs';

/**
 * Below this much free space no environment is created. On a full file system lmdb-js 3.5 dies of
 * SIGBUS writing a new lock file through its map, or of SIGSEGV when the first meta pages cannot be
 * written, with nothing said (an outside test's replica started on a full disk).
 */
export const OPEN_FLOOR_BYTES = 1024 * 1024;

/** Below this much free space a failed write is put down to a full disk (LMDB writes up to 512 KiB at once). */
export const FULL_BELOW_BYTES = 16 * 1024 * 1024;

const IO_CODES = new Set<unknown>(['ENOSPC', 'EDQUOT', 'EIO', 'EFBIG', 5, 27, 28, 122]);
const IO_MESSAGE = /Input\/output error|No space left|quota exceeded|short write|File too large/i;

/** Whether `e` is a write the file system refused or cut short (not a contract violation). */
export function isWriteFailure(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return IO_CODES.has((e as NodeJS.ErrnoException).code) || IO_MESSAGE.test(e.message);
}

/** Bytes this process may still write on the file system holding `dir` (undefined: unknown). */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = fs.statfsSync(dir);
    // Some file systems (FUSE, network mounts) report no blocks at all: that says nothing of the space.
    if (s.blocks === 0) return undefined;
    // Root may also use the blocks a file system reserves for it (ext4: 5 %).
    return (process.getuid?.() === 0 ? s.bfree : s.bavail) * s.bsize;
  } catch {
    return undefined;
  }
}

/** What to add to a failed write's message about the file system holding `dir` ('' if it is not full). */
export function diskSpaceNote(dir: string): string {
  const free = freeBytes(dir);
  if (free === undefined || free >= FULL_BELOW_BYTES) return '';
  return ` (the file system holding ${dir} is full: ${free} bytes free; free space there, then restart the replica)`;
}
