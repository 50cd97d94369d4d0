import { OwnershipStore as OwnershipRecords } from './ownership-records.js';
import * as journalModule from '../../journal/journal.js';
import type { GroupedWriter, Journal } from '../../journal/journal.js';

/**
 * The one place that finds the journal's group writer (the store's own tables join the journal's
 * group commit) and builds the ownership records on it. Written to work both with today's journal
 * (a module-level `groupedWriterFor`) and with the one that exposes `journal.writer` and
 * `OwnershipStore.forJournal`; once that has landed, both bodies shrink to one line.
 */
export function writerOf(journal: Journal): GroupedWriter {
  const exposed = (journal as { writer?: GroupedWriter }).writer;
  const lookup = (journalModule as { groupedWriterFor?: (db: Journal['db']) => GroupedWriter | undefined }).groupedWriterFor;
  const writer = exposed ?? lookup?.(journal.db);
  if (!writer) throw new Error(`journal ${journal.path} has no group writer (is it closed?)`);
  return writer;
}

/** The ownership records in the journal's database, writing through its group commit. */
export function ownershipRecordsOf(journal: Journal): OwnershipRecords {
  const forJournal = (OwnershipRecords as { forJournal?: (j: Journal) => OwnershipRecords }).forJournal;
  // Today's constructor finds the journal's writer by itself.
  return forJournal ? forJournal(journal) : new OwnershipRecords(journal.db);
}
