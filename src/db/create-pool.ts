import { neonConfig, Pool } from "@neondatabase/serverless";
import type { DatabaseSettings } from "./database-settings";

export interface PoolOptions {
  /** Most connections the pool opens; the actor needs one, Node tools a few. */
  max?: number;
  /**
   * Idle connections close after this long. In the actor this is what lets an idle
   * Durable Object be evicted: an open socket counts as activity and keeps it in memory.
   */
  idleTimeoutMillis?: number;
  /** A WebSocket implementation for runtimes without a global one (Node 20/22: the `ws` package). */
  webSocketConstructor?: typeof neonConfig.webSocketConstructor;
}

/**
 * A @neondatabase/serverless Pool configured from settings alone. The driver's
 * connection options are process-wide (neonConfig), so every pool in a process
 * must come from the same settings; in a Worker that is always the case.
 */
export function createPool(settings: DatabaseSettings, options: PoolOptions = {}): Pool {
  if (options.webSocketConstructor) neonConfig.webSocketConstructor = options.webSocketConstructor;
  // Coalescing merges writes after a setTimeout(0), which costs every query about a
  // millisecond (measured: one round trip 1.62 ms with it, 0.36 ms without); the
  // actor's queries are few and small, so latency matters more than frame count.
  neonConfig.coalesceWrites = false;
  const proxy = settings.DATABASE_WS_PROXY;
  if (proxy !== undefined) {
    const url = new URL(proxy);
    const base = `${url.host}${url.pathname === "/" ? "" : url.pathname}`;
    neonConfig.wsProxy = (host, port) => `${base}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = url.protocol === "wss:";
    // A plain PostgreSQL behind a bridge: no TLS inside the socket, and no
    // pipelined password auth (local servers may use trust auth).
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  const pool = new Pool({
    connectionString: settings.DATABASE_URL,
    max: options.max ?? 4,
    idleTimeoutMillis: options.idleTimeoutMillis ?? 10_000,
  });
  // An idle connection that drops (server restart, network cut) is only removed from
  // the pool; without a listener the pool's "error" event would crash the process.
  pool.on("error", () => undefined);
  return pool;
}
