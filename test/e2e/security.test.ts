import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { startWebSocketBridge, type WebSocketBridge } from "../../scripts/local/websocket-bridge";
import { createPool } from "../../src/db/create-pool";
import { readDatabaseSettings } from "../../src/db/database-settings";

// Issue 10's rows that need real sockets, replayed from Node: the local database bridge
// (row 8). The rows a Worker answers are in test/worker/security.test.ts.

/** A bridge of this file's own to the run's database. */
async function bridgeToTestDatabase(): Promise<WebSocketBridge> {
  const target = new URL(inject("databaseUrl"));
  return startWebSocketBridge({ target: { host: target.hostname, port: Number(target.port || 5432) } });
}

/** A WebSocket upgrade to `url` from Node's `ws`: the HTTP status it was refused with, or "open". */
function upgrade(url: string, options: WebSocket.ClientOptions = {}): Promise<number | "open"> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options);
    socket.once("open", () => {
      socket.terminate();
      resolve("open");
    });
    socket.once("unexpected-response", (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once("error", reject);
  });
}

describe("row 8: the local database bridge serves only this run's own tools", () => {
  let bridge: WebSocketBridge;
  beforeAll(async () => {
    bridge = await bridgeToTestDatabase();
  });
  afterAll(() => bridge.close());

  it("has a per-run secret path in its DATABASE_WS_PROXY", async () => {
    expect(bridge.proxyUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/v1\/[A-Za-z0-9_-]{32}$/);
    const other = await bridgeToTestDatabase();
    try {
      expect(other.path).not.toBe(bridge.path);
    } finally {
      await other.close();
    }
  });

  it("refuses an upgrade from a browser's page (Origin: https://evil.example) before reaching the database", async () => {
    const before = bridge.connectionsAccepted();
    expect(await upgrade(bridge.proxyUrl, { origin: "https://evil.example" })).toBe(403);
    expect(await upgrade(bridge.proxyUrl, { headers: { "sec-fetch-mode": "websocket" } })).toBe(403);
    expect(bridge.connectionsAccepted()).toBe(before);
    expect(bridge.openConnections()).toBe(0);
  });

  it("refuses a wrong path: the old fixed /v1, another secret, the root", async () => {
    const base = new URL(bridge.proxyUrl);
    for (const path of ["/v1", "/v1/", `${bridge.path}x`, bridge.path.slice(0, -1), "/"]) {
      expect(await upgrade(`ws://${base.host}${path}?address=127.0.0.1:5432`), path).toBe(404);
    }
    expect(await upgrade(bridge.proxyUrl, { headers: { host: "evil.example" } })).toBe(403);
  });

  it("answers plain HTTP with nothing", async () => {
    const response = await fetch(bridge.proxyUrl.replace(/^ws:/, "http:"));
    expect(response.status).toBe(404);
  });

  it("carries the Neon driver through the secret path", async () => {
    const settings = readDatabaseSettings({
      DATABASE_URL: inject("databaseUrl"),
      DATABASE_WS_PROXY: bridge.proxyUrl,
    });
    const pool = createPool(settings, { max: 1, webSocketConstructor: WebSocket });
    try {
      const result = await pool.query("SELECT 41 + 1 AS answer");
      expect(result.rows).toEqual([{ answer: 42 }]);
    } finally {
      await pool.end();
    }
    expect(bridge.connectionsAccepted()).toBeGreaterThanOrEqual(1);
  });
});
