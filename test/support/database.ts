import type { Pool } from "@neondatabase/serverless";
import { inject } from "vitest";
import ws from "ws";
import { createPool } from "../../src/db/create-pool";
import { readDatabaseSettings } from "../../src/db/database-settings";

/** A pool on the run's test database, through the run's bridge. */
export function openTestPool(max = 4): Pool {
  const settings = readDatabaseSettings({
    DATABASE_URL: inject("databaseUrl"),
    DATABASE_WS_PROXY: inject("databaseWsProxy"),
  });
  return createPool(settings, { max, webSocketConstructor: ws });
}
