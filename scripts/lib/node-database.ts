import type { Pool } from "@neondatabase/serverless";
import ws from "ws";
import { createPool } from "../../src/db/create-pool";
import type { DatabaseSettings } from "../../src/db/database-settings";
import { startWebSocketBridge, type WebSocketBridge } from "../local/websocket-bridge";

/** How a Node process reaches the database, and the bridge (if any) it started for that. */
export interface DatabaseRoute {
  /**
   * The settings to connect with: the given ones, with DATABASE_WS_PROXY pointing at
   * the in-process bridge when one was started. Hand these to anything else on this
   * machine that uses the Neon driver (`wrangler dev`) while the route is open.
   */
  readonly settings: DatabaseSettings;
  /** The bridge started here, if one was. */
  readonly bridge: WebSocketBridge | undefined;
  close(): Promise<void>;
}

/** A pool for Node-side tools, and whatever must be stopped with it. */
export interface NodeDatabase {
  pool: Pool;
  /** The settings the pool uses (see DatabaseRoute.settings). */
  settings: DatabaseSettings;
  close(): Promise<void>;
}

const LOCAL_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/**
 * The product's driver speaks PostgreSQL only over WebSocket, and a local PostgreSQL
 * speaks only TCP. So when no DATABASE_WS_PROXY is given and the database is on this
 * machine, a bridge is started in-process; anything else (Neon) is reached directly.
 */
export async function routeDatabase(settings: DatabaseSettings): Promise<DatabaseRoute> {
  const url = new URL(settings.DATABASE_URL);
  if (settings.DATABASE_WS_PROXY !== undefined || !LOCAL_HOSTS.test(url.hostname)) {
    return { settings, bridge: undefined, close: async () => {} };
  }
  const bridge = await startWebSocketBridge({
    target: { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 5432) },
  });
  return {
    settings: { ...settings, DATABASE_WS_PROXY: bridge.proxyUrl },
    bridge,
    close: () => bridge.close(),
  };
}

/** Connects Node tools with the product's own driver (see routeDatabase). */
export async function openNodeDatabase(settings: DatabaseSettings, max = 4): Promise<NodeDatabase> {
  const route = await routeDatabase(settings);
  const pool = createPool(route.settings, { max, webSocketConstructor: ws });
  return {
    pool,
    settings: route.settings,
    close: async () => {
      await pool.end();
      await route.close();
    },
  };
}
