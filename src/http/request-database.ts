import type { Context } from "hono";
import { createPool } from "../db/create-pool";
import { readDatabaseSettings } from "../db/database-settings";
import type { Env } from "../env";
import { PgEventStore } from "../events/postgres";

/**
 * A store for one Worker request that is not stream-scoped (listing, health). A
 * Worker may not reuse connections across requests, so the pool ends with the request.
 */
export function requestStore(c: Context<{ Bindings: Env }>): { store: PgEventStore; release: () => void } {
  const pool = createPool(readDatabaseSettings(c.env), { max: 1 });
  return {
    store: new PgEventStore(pool),
    release: () => c.executionCtx.waitUntil(pool.end().catch(() => undefined)),
  };
}
