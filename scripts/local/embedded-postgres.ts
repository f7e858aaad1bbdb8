import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

// The embedded PostgreSQL for a laptop with nothing but npm: PGlite (PostgreSQL
// compiled to WASM) served on a local TCP port so that ordinary clients, and the
// WebSocket bridge, can connect to it. PGlite is a single session inside; the
// socket server queues queries and keeps a transaction on the connection that
// opened it, so several connections are allowed but their work is serialised.

export interface EmbeddedPostgresOptions {
  /** Where the data lives between runs; in memory when absent. */
  dataDir?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  maxConnections?: number;
}

export interface EmbeddedPostgres {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  if (options.dataDir !== undefined) await mkdir(options.dataDir, { recursive: true });
  const db = options.dataDir === undefined ? new PGlite() : new PGlite(options.dataDir);
  await db.waitReady;
  const host = options.host ?? "127.0.0.1";
  const server = new PGLiteSocketServer({
    db,
    host,
    port: options.port ?? 0,
    maxConnections: options.maxConnections ?? 1000,
  });
  await server.start();
  const port = Number(server.getServerConn().split(":").pop());
  return {
    url: `postgres://postgres@${host}:${port}/postgres`,
    host,
    port,
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}
