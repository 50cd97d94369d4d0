/**
 * `npm run migrate-store -- --from DATA_DIR` (see `--help`). Logic: src/tools/migrate-store.ts and src/store/migrate.ts.
 */
import { migrateStoreMain } from '../src/tools/migrate-store.js';

process.exitCode = await migrateStoreMain(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
