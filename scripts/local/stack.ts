import type { DatabaseSettings } from "../../src/db/database-settings";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { type MigrationReport, migrate } from "../lib/migrations";
import { openNodeDatabase, routeDatabase } from "../lib/node-database";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./embedded-postgres";
import type { WebSocketBridge } from "./websocket-bridge";
import { type LocalWorker, type LocalWorkerOptions, startLocalWorker } from "./worker";

// The whole local stack, in the order it must start and the reverse order it stops:
// the database (a given server, or the embedded PostgreSQL), the WebSocket bridge the
// Neon driver needs in front of a local server, the migrations, and the Worker. This
// is what `npm start` serves; tests and the benchmark start the same pieces from here.

export type LocalDatabase =
  /** A server of one's own (DATABASE_URL). */
  | { url: string }
  /** The embedded PostgreSQL: kept in `dataDir`, or a throwaway cluster when absent. */
  | { embedded: { dataDir?: string; logFile?: string } };

export interface LocalStackOptions {
  database: LocalDatabase;
  worker: Omit<LocalWorkerOptions, "vars"> & { vars?: Record<string, string> };
}

export interface LocalStack {
  /** The embedded server, when this stack started one. */
  readonly embedded: EmbeddedPostgres | undefined;
  /** As the Worker gets them: DATABASE_WS_PROXY names the bridge when one was started. */
  readonly settings: DatabaseSettings;
  readonly bridge: WebSocketBridge | undefined;
  readonly migrations: MigrationReport;
  readonly worker: LocalWorker;
  close(): Promise<void>;
}

/**
 * Starts every piece; if one fails, stops those already started and rethrows. `steps`
 * hears the name of each piece as it starts, for a progress line.
 */
export async function startLocalStack(
  options: LocalStackOptions,
  steps: (step: "database" | "migrations" | "worker") => void = () => undefined,
): Promise<LocalStack> {
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
  };
  try {
    steps("database");
    let embedded: EmbeddedPostgres | undefined;
    let url: string;
    if ("url" in options.database) {
      url = options.database.url;
    } else {
      embedded = await startEmbeddedPostgres(options.database.embedded);
      stops.push(() => embedded?.close() ?? Promise.resolve());
      url = embedded.url;
    }
    const route = await routeDatabase(readDatabaseSettings({ DATABASE_URL: url }));
    stops.push(() => route.close());

    steps("migrations");
    const database = await openNodeDatabase(route.settings, 1);
    let migrations: MigrationReport;
    try {
      migrations = await migrate(database.pool);
    } finally {
      await database.close();
    }

    steps("worker");
    const worker = await startLocalWorker({
      ...options.worker,
      vars: {
        ...options.worker.vars,
        DATABASE_URL: route.settings.DATABASE_URL,
        ...(route.settings.DATABASE_WS_PROXY ? { DATABASE_WS_PROXY: route.settings.DATABASE_WS_PROXY } : {}),
      },
    });
    stops.push(() => worker.stop());
    return {
      embedded,
      settings: route.settings,
      bridge: route.bridge,
      migrations,
      worker,
      close: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
