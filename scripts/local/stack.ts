import type { DatabaseSettings } from "../../src/db/database-settings";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { type MigrationReport, migrate } from "../lib/migrations";
import { openNodeDatabase, routeDatabase } from "../lib/node-database";
import {
  type EmbeddedPostgres,
  type EmbeddedPostgresOptions,
  startEmbeddedPostgres,
} from "./embedded-postgres";
import { type NeonHttpProxy, startNeonHttpProxy } from "./neon-http-proxy";
import type { WebSocketBridge } from "./websocket-bridge";
import { type LocalWorker, type LocalWorkerOptions, startLocalWorker } from "./worker";

// The whole local stack, in the order it must start and the reverse order it stops:
// the database (a given server, or the embedded PostgreSQL), what the Neon driver needs
// in front of a local server (the /sql endpoint the Worker queries over HTTP, as it
// queries Neon, and the WebSocket bridge for Node tools), the migrations, and the
// Worker. This is what `npm start` serves; tests and the benchmark start the same
// pieces from here.

export type LocalDatabase =
  /** A server of one's own (DATABASE_URL). */
  | { url: string }
  /** The embedded PostgreSQL: kept in `dataDir`, or a throwaway cluster when absent. */
  | { embedded: EmbeddedPostgresOptions };

export interface LocalStackOptions {
  database: LocalDatabase;
  /** Where the /sql endpoint listens: an earlier stack's port and secret path bring it back where the Worker looks. */
  httpEndpoint?: { port?: number; path?: string };
  worker: Omit<LocalWorkerOptions, "vars"> & { vars?: Record<string, string> };
}

export interface LocalStack {
  /** The embedded server, when this stack started one. */
  readonly embedded: EmbeddedPostgres | undefined;
  /**
   * As the Worker gets them: DATABASE_HTTP_ENDPOINT names the /sql endpoint and
   * DATABASE_WS_PROXY the bridge when they were started.
   */
  readonly settings: DatabaseSettings;
  readonly bridge: WebSocketBridge | undefined;
  /** The /sql endpoint, started for a database on this machine (Neon is queried directly). */
  readonly httpEndpoint: NeonHttpProxy | undefined;
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
    let httpEndpoint: NeonHttpProxy | undefined;
    // A bridge was started: the database is on this machine, and needs the endpoint too.
    if (route.bridge !== undefined) {
      const server = new URL(url);
      httpEndpoint = await startNeonHttpProxy({
        target: { host: server.hostname.replace(/^\[|\]$/g, ""), port: Number(server.port || 5432) },
        ...options.httpEndpoint,
      });
      stops.push(() => httpEndpoint?.close() ?? Promise.resolve());
    }
    const settings: DatabaseSettings = {
      ...route.settings,
      ...(httpEndpoint === undefined ? {} : { DATABASE_HTTP_ENDPOINT: httpEndpoint.fetchEndpoint }),
    };

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
        DATABASE_URL: settings.DATABASE_URL,
        ...(settings.DATABASE_WS_PROXY ? { DATABASE_WS_PROXY: settings.DATABASE_WS_PROXY } : {}),
        ...(settings.DATABASE_HTTP_ENDPOINT
          ? { DATABASE_HTTP_ENDPOINT: settings.DATABASE_HTTP_ENDPOINT }
          : {}),
      },
    });
    stops.push(() => worker.stop());
    return {
      embedded,
      settings,
      bridge: route.bridge,
      httpEndpoint,
      migrations,
      worker,
      close: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
