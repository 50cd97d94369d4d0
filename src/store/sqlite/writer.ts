import { type GroupedWriter, groupedWriterFor, type Journal } from '../../journal/journal.js';

/**
 * The journal's group writer: writes of the store's own tables join the journal's group commit.
 * The one place that finds it; once the journal exposes `journal.writer`, this reads that instead.
 */
export function writerOf(journal: Journal): GroupedWriter {
  const exposed = (journal as { writer?: GroupedWriter }).writer;
  const writer = exposed ?? groupedWriterFor(journal.db);
  if (!writer) throw new Error(`journal ${journal.path} has no group writer (is it closed?)`);
  return writer;
}
