import type { Pool } from "@neondatabase/serverless";
import { sleep } from "./closed-loop";

// What the database server saw, per database, so that two stores on one server (glyph-streams
// and the peer, each in its own database) are counted the same way:
//
// * statements: pg_stat_statements (top-level statements, BEGIN and COMMIT included), when
//   the server has it loaded (the bench's embedded PostgreSQL loads it; a server given by
//   DATABASE_URL may not). Counted as soon as each statement ends, so a delta around a case
//   is exact at once. The bench's own queries of pg_stat_* views are left out by their text.
// * transactions: pg_stat_database.xact_commit + xact_rollback, always available. A backend
//   reports its counts at most once a second while busy and up to 10 s after it goes idle
//   (or when it exits), so a delta is complete only after STATS_SETTLE_MS of quiet. The
//   queries that read them count too when they run in the database measured (`pool` is
//   best connected to a third database, such as `postgres`).
// * connections: client backends per database in pg_stat_activity, sampled; the bench's
//   own connections (application_name `glyph-bench…`) are left out.

/** The application_name prefix of the bench's own connections, left out of every count. */
export const BENCH_APPLICATION_NAME = "glyph-bench";

/** The same postgres:// URL with the bench's application_name (and another database, if given). */
export function benchConnectionUrl(url: string, purpose: string, database?: string): string {
  const parsed = new URL(url);
  if (database !== undefined) parsed.pathname = `/${database}`;
  parsed.searchParams.set("application_name", `${BENCH_APPLICATION_NAME}-${purpose}`);
  return parsed.toString();
}

/** pg_stat_database counts reach the shared statistics within this long of a backend going idle. */
export const STATS_SETTLE_MS = 11_000;

export interface DatabaseCounts {
  /** Top-level statements so far (pg_stat_statements); undefined when unavailable. */
  statements: number | undefined;
  /** Committed + rolled-back transactions so far (pg_stat_database, as reported yet). */
  transactions: number;
}

export interface ActivityCounter {
  /** Whether statements are counted (pg_stat_statements loaded). */
  readonly statementsCounted: boolean;
  /** Counts per database name. */
  snapshot(): Promise<Map<string, DatabaseCounts>>;
  /** `after - before` for one database (less this counter's own snapshot in its database). */
  delta(
    before: Map<string, DatabaseCounts>,
    after: Map<string, DatabaseCounts>,
    database: string,
  ): DatabaseCounts;
}

/**
 * A counter over the given databases. `pool` runs the queries in `ownDatabase`; a
 * snapshot is one transaction there, subtracted from that database's transactions.
 */
export async function activityCounter(
  pool: Pool,
  ownDatabase: string,
  databases: readonly string[],
): Promise<ActivityCounter> {
  const statementsCounted = await enablePgStatStatements(pool);
  const names = [...databases];
  return {
    statementsCounted,
    snapshot: async () => {
      const counts = new Map<string, DatabaseCounts>();
      const transactions = await pool.query(
        `SELECT datname, (xact_commit + xact_rollback)::float8 AS n FROM pg_stat_database WHERE datname = ANY($1)`,
        [names],
      );
      for (const row of transactions.rows as Array<{ datname: string; n: number }>) {
        counts.set(row.datname, { statements: statementsCounted ? 0 : undefined, transactions: row.n });
      }
      if (statementsCounted) {
        const statements = await pool.query(
          `SELECT d.datname, sum(s.calls)::float8 AS n
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = ANY($1) AND s.query NOT LIKE '%pg\\_stat\\_%'
            GROUP BY d.datname`,
          [names],
        );
        for (const row of statements.rows as Array<{ datname: string; n: number }>) {
          const entry = counts.get(row.datname);
          if (entry) entry.statements = row.n;
        }
      }
      return counts;
    },
    delta: (before, after, database) => {
      const a = before.get(database);
      const b = after.get(database);
      const statements =
        a?.statements === undefined || b?.statements === undefined ? undefined : b.statements - a.statements;
      // Snapshot `before` is one or two transactions in ownDatabase (reported by now if settled).
      const own = database === ownDatabase ? (statementsCounted ? 2 : 1) : 0;
      return { statements, transactions: (b?.transactions ?? 0) - (a?.transactions ?? 0) - own };
    },
  };
}

/** True when pg_stat_statements is loaded; creates the extension (its view) if needed. */
async function enablePgStatStatements(pool: Pool): Promise<boolean> {
  try {
    const loaded = await pool.query("SELECT current_setting('shared_preload_libraries') AS libraries");
    const libraries = String((loaded.rows[0] as { libraries?: unknown } | undefined)?.libraries ?? "");
    if (!libraries.split(",").some((name) => name.trim() === "pg_stat_statements")) return false;
    await pool.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    await pool.query("SELECT 1 FROM pg_stat_statements(false) LIMIT 1");
    return true;
  } catch {
    return false;
  }
}

export interface ConnectionSampler {
  /** Stops sampling; the most client connections seen at once, per database. */
  stop(): Promise<Map<string, number>>;
}

/** Samples pg_stat_activity every `intervalMs` until stopped (the bench's own connections left out). */
export function sampleConnections(
  pool: Pool,
  databases: readonly string[],
  intervalMs = 100,
): ConnectionSampler {
  const peaks = new Map<string, number>(databases.map((name) => [name, 0] as const));
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        for (const [name, n] of await connectionsNow(pool, databases)) {
          peaks.set(name, Math.max(peaks.get(name) ?? 0, n));
        }
      } catch {
        // A failed sample is skipped; the next one may succeed.
      }
      await sleep(intervalMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peaks;
    },
  };
}

/** Client connections per database now, the bench's own left out. */
export async function connectionsNow(pool: Pool, databases: readonly string[]): Promise<Map<string, number>> {
  const result = await pool.query(
    `SELECT datname, count(*)::int AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND datname = ANY($1)
        AND application_name NOT LIKE $2 GROUP BY datname`,
    [[...databases], `${BENCH_APPLICATION_NAME}%`],
  );
  const counts = new Map<string, number>(databases.map((name) => [name, 0] as const));
  for (const row of result.rows as Array<{ datname: string; n: number }>) counts.set(row.datname, row.n);
  return counts;
}
