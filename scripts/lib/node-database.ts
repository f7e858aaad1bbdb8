import type { Pool } from "@neondatabase/serverless";
import ws from "ws";
import { createPool } from "../../src/db/create-pool";
import type { DatabaseSettings } from "../../src/db/database-settings";
import { startWebSocketBridge, type WebSocketBridge } from "../local/websocket-bridge";

/** A pool for Node-side tools, and whatever must be stopped with it. */
export interface NodeDatabase {
  pool: Pool;
  close(): Promise<void>;
}

const LOCAL_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/**
 * Connects Node tools with the product's own driver. A local PostgreSQL speaks only
 * TCP, so when no DATABASE_WS_PROXY is given and the database is on this machine, a
 * bridge is started in-process; anything else (Neon) is reached directly.
 */
export async function openNodeDatabase(settings: DatabaseSettings, max = 4): Promise<NodeDatabase> {
  let bridge: WebSocketBridge | undefined;
  let effective = settings;
  const url = new URL(settings.DATABASE_URL);
  if (settings.DATABASE_WS_PROXY === undefined && LOCAL_HOSTS.test(url.hostname)) {
    bridge = await startWebSocketBridge({
      target: { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 5432) },
    });
    effective = { ...settings, DATABASE_WS_PROXY: bridge.proxyUrl };
  }
  const pool = createPool(effective, { max, webSocketConstructor: ws });
  return {
    pool,
    close: async () => {
      await pool.end();
      await bridge?.close();
    },
  };
}
