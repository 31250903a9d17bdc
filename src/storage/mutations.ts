// Test-only seam: deliberate bugs of the store's write-ahead path that the simulator must catch
// (like src/replica/mutations.ts for the shell). Nothing outside test/ may set these.
export const storageMutations = {
  /** Let a Ready count as persisted once its log record is written, before the record is synced. */
  walDurableBeforeSync: false,
  /** Drop log records as soon as they are synced, before LMDB holds their Ready durably. */
  walReleasedEarly: false,
  /** Apply against committed LMDB state only, ignoring earlier applies still held back or committing. */
  applyIgnoresHeldBack: false,
  /** Let a Ready that changes term or vote skip the sync, as one that only moves the commit index does. */
  hardStateUnsynced: false,
  /**
   * Keep no blank mark: a store is blank only at the start that created it, as when the server
   * guessed blankStart from an empty data directory (a restart before catching up votes freely).
   */
  blankMarkNotKept: false,
};

export function resetStorageMutations(): void {
  for (const key of Object.keys(storageMutations) as (keyof typeof storageMutations)[]) storageMutations[key] = false;
}
