/**
 * Another process on the same DATA_DIR (a tool beside the service), for the SQLite store's
 * cross-process lease test. Prints one JSON line with what happened, then exits.
 *
 *   node --import tsx tests/unit/store/lease-child.ts acquire <dataDir> <subject> <ttlMs>
 *   node --import tsx tests/unit/store/lease-child.ts write <dataDir> <subject> <token>
 */
import { silentLogger } from '../../../src/log/logger.js';
import { StaleLeaseError } from '../../../src/store/api.js';
import { SqliteStore } from '../../../src/store/sqlite/store.js';

const [mode, dataDir, subject, arg] = process.argv.slice(2);
if (!mode || !dataDir || !subject || !arg) throw new Error('usage: lease-child.ts acquire|write <dataDir> <subject> <ttlMs|token>');

const store = SqliteStore.open({ dataDir, sync: 'full', log: silentLogger() });
try {
  if (mode === 'acquire') {
    const lease = await store.leases.acquire(subject, `child-${process.pid}`, Number(arg));
    console.log(JSON.stringify(lease ? { msg: 'acquired', token: lease.token } : { msg: 'busy' }));
  } else {
    const [repo, number] = subject.split('#') as [string, string];
    try {
      await store.ownership.setKnown(repo, Number(number), ['late'], null, { subject, token: Number(arg) });
      console.log(JSON.stringify({ msg: 'written' }));
    } catch (error) {
      console.log(JSON.stringify({ msg: error instanceof StaleLeaseError ? 'refused' : 'error', error: String(error) }));
    }
  }
} finally {
  await store.close();
}
