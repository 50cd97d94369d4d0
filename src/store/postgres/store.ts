/** Placeholder until the PostgreSQL backend lands (next commit). */
export const PostgresStore = {
  open(_options: { url: string; schema: string; poolSize: number; log: unknown }): never {
    throw new Error('DATABASE_URL: the PostgreSQL store is not built yet');
  },
};
