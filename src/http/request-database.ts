import type { Context } from "hono";
import type { WorkerConfig } from "../config/worker-config";
import { openHttpClient } from "../db/http-client";
import type { SqlQueryable } from "../db/sql-client";
import { PgEventStore } from "../events/postgres";

/**
 * The database for one Worker request that is not stream-scoped (the feed, subscriptions):
 * over HTTP like everything the Worker does (decision 24), so it holds nothing and
 * `release` only calls `ended` (a DatabaseGate's slot is given back then).
 */
export function requestDatabase(
  config: WorkerConfig,
  ended: () => void = () => undefined,
): { db: SqlQueryable; release: () => void } {
  return { db: openHttpClient(config.database, { timeoutMs: config.databaseTimeoutMs }), release: ended };
}

/**
 * A store for one Worker request that is not stream-scoped (listing, health): over
 * HTTP like the actors' (docs/ARCHITECTURE.md, decision 24), so it holds nothing and
 * `release` only calls `ended`.
 */
export function requestStore(
  _c: Context,
  config: WorkerConfig,
  ended: () => void = () => undefined,
): { store: PgEventStore; release: () => void } {
  const { db, release } = requestDatabase(config, ended);
  return { store: new PgEventStore(db), release };
}
