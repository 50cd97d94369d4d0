import pg from 'pg';

/**
 * PostgreSQL for the tests: TEST_DATABASE_URL (default the machine's trust-auth `test` database).
 * Each test file makes its own schemas and drops them. On a machine without PostgreSQL the tests
 * that need it are skipped with one printed line, unless GITEA_TRIAGE_REQUIRE_POSTGRES=1 (set by
 * .ci/run), which makes the missing database a failure.
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const POSTGRES_REQUIRED = process.env.GITEA_TRIAGE_REQUIRE_POSTGRES === '1';

/** Undefined when PostgreSQL answers; else why not (one line). */
export async function postgresUnavailable(url = TEST_DATABASE_URL): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message || error.name : String(error);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The one line printed when the PostgreSQL tests of `file` are skipped. */
export function skipLine(file: string, reason: string): string {
  return (
    `${file}: PostgreSQL tests SKIPPED: ${TEST_DATABASE_URL.replace(/:[^:@/]*@/, ':***@')} unreachable (${reason}); ` +
    'to run them start PostgreSQL there or set TEST_DATABASE_URL (GITEA_TRIAGE_REQUIRE_POSTGRES=1 makes this a failure)\n'
  );
}

let schemas = 0;
/** A schema name unique to this process and call. */
export function testSchemaName(prefix: string): string {
  schemas++;
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${schemas}`;
}

export async function dropSchemas(names: readonly string[], url = TEST_DATABASE_URL): Promise<void> {
  if (names.length === 0) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const name of names) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}
