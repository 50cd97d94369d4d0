import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../src/log/logger.js';
import { SqliteStore } from '../../../src/store/sqlite/store.js';
import { storeConformance } from '../../store/conformance.js';

const dirs: string[] = [];

/**
 * Both handles are one store: two SQLite connections in one thread would wait on each other's
 * write lock while blocking the event loop that releases it. Several processes on one DATA_DIR
 * (the service and a tool) are covered by the journal's own tests (tests/unit/journal).
 */
storeConformance('sqlite', {
  async open() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-store-'));
    dirs.push(dir);
    const store = SqliteStore.open({ dataDir: dir, sync: 'full', log: silentLogger() });
    return { a: store, b: store };
  },
  async cleanup() {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  },
});
