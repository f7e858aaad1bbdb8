import { createServer, request as httpRequest } from "node:http";
import { type AddressInfo, connect } from "node:net";
import type { Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { migrate } from "../../scripts/lib/migrations";
import { startWebSocketBridge, type WebSocketBridge } from "../../scripts/local/websocket-bridge";
import { createPool } from "../../src/db/create-pool";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { UNAVAILABLE_MESSAGE } from "../../src/events/failure";
import { MAX_CONCURRENT_LISTINGS, MAX_WAITING_LISTINGS } from "../../src/http/limits";
import { HEALTH_ANSWER_MS } from "../../src/http/routes/health";
import { adminAuthorization } from "../support/test-tokens";
import { type RunningWorker, startWorker } from "./worker-harness";

// Issue 10's rows that need real sockets, replayed from Node: the local database bridge
// (row 8), and the real Worker on a bridge of this file's own, which counts the database
// sessions it carries (rows 3, 5 and 6). The other rows are in test/worker/security.test.ts.

/** Short, so the slow-body test does not wait the default 10 s. */
const BODY_TIMEOUT_MS = 1_500;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A bridge of this file's own to the run's database. */
async function bridgeToTestDatabase(): Promise<WebSocketBridge> {
  const target = new URL(inject("databaseUrl"));
  return startWebSocketBridge({ target: { host: target.hostname, port: Number(target.port || 5432) } });
}

/**
 * An HTTP hop in front of a /sql endpoint (Neon's SQL over HTTP) that counts the
 * statements sent through it: with the bridge's sessions, every way the Worker reaches
 * the database is counted, whichever it uses for a route.
 */
async function countingHop(
  target: string,
): Promise<{ url: string; requests(): number; close(): Promise<void> }> {
  let requests = 0;
  const server = createServer((request, response) => {
    requests++;
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const headers = Object.fromEntries(
        Object.entries(request.headers).filter(
          (entry): entry is [string, string] =>
            typeof entry[1] === "string" && !["host", "connection", "content-length"].includes(entry[0]),
        ),
      );
      // node:http, not fetch: Node's fetch adds Sec-Fetch-Mode, which a local server may take for a browser.
      const forwarded = httpRequest(target, { method: request.method ?? "POST", headers }, (answer) => {
        const type = answer.headers["content-type"];
        response.writeHead(answer.statusCode ?? 502, type === undefined ? {} : { "content-type": type });
        answer.pipe(response);
      });
      forwarded.on("error", () => response.destroy());
      forwarded.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}/sql`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
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
    expect(await upgrade(bridge.proxyUrl, { headers: { "sec-fetch-site": "cross-site" } })).toBe(403);
    expect(await upgrade(bridge.proxyUrl, { headers: { "sec-fetch-dest": "websocket" } })).toBe(403);
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

describe("the real Worker on a database and a bridge of its own", () => {
  // A database of this file's own, so that locking its tables holds up nobody else's test.
  // The driver's proxy setting is process-wide: every pool here goes through this bridge.
  const name = `glyph_security_${crypto.randomUUID().replaceAll("-", "")}`;
  let bridge: WebSocketBridge;
  let hop: Awaited<ReturnType<typeof countingHop>>;
  let admin: Pool;
  let url: URL;
  let running: RunningWorker;
  const poolOn = (database: URL | string) =>
    createPool(
      readDatabaseSettings({ DATABASE_URL: database.toString(), DATABASE_WS_PROXY: bridge.proxyUrl }),
      { max: 1, webSocketConstructor: WebSocket },
    );
  beforeAll(async () => {
    bridge = await bridgeToTestDatabase();
    admin = poolOn(inject("databaseUrl"));
    await admin.query(`CREATE DATABASE ${name}`);
    url = new URL(inject("databaseUrl"));
    url.pathname = `/${name}`;
    const own = poolOn(url);
    try {
      await migrate(own);
    } finally {
      await own.end();
    }
    // The run's /sql endpoint, behind a hop of this file's own that counts what goes through.
    hop = await countingHop(inject("databaseHttpEndpoint"));
    running = await startWorker(bridge.proxyUrl, {
      DATABASE_URL: url.toString(),
      DATABASE_HTTP_ENDPOINT: hop.url,
      BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
    });
  });
  /** Database sessions opened (over the bridge) and statements sent over HTTP, so far. */
  const databaseTrips = () => bridge.connectionsAccepted() + hop.requests();
  afterAll(async () => {
    await running?.stop();
    await admin?.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin?.end();
    await hop?.close();
    await bridge?.close();
  });

  it("row 6: /healthz, open to anyone, asks the database at most once per answer window however often it is asked", async () => {
    const before = databaseTrips();
    const startedAt = Date.now();
    for (let call = 0; call < 40; call++) {
      const response = await fetch(new URL("/healthz", running.url));
      expect(response.status).toBe(200);
      expect(Number(response.headers.get("age"))).toBeLessThan(HEALTH_ANSWER_MS / 1000);
    }
    const together = await Promise.all(
      Array.from({ length: 40 }, () => fetch(new URL("/healthz", running.url))),
    );
    expect(together.map((response) => response.status)).toEqual(Array(40).fill(200));
    const windows = 1 + Math.ceil((Date.now() - startedAt) / HEALTH_ANSWER_MS);
    expect(databaseTrips() - before).toBeLessThanOrEqual(windows);
  });

  it("row 3: 40 listings at once run at most the gate's queries; the others wait their turn or are told busy", async () => {
    // Hold every listing inside the database: each one in flight is then a backend waiting for the lock.
    const lock = createPool(
      readDatabaseSettings({ DATABASE_URL: url.toString(), DATABASE_WS_PROXY: bridge.proxyUrl }),
      {
        max: 1,
        webSocketConstructor: WebSocket,
      },
    );
    const client = await lock.connect();
    let responses: Response[];
    let mostHeld = 0;
    try {
      await client.query("BEGIN");
      await client.query("LOCK TABLE workflow_streams IN ACCESS EXCLUSIVE MODE");
      const pending = Promise.all(
        Array.from({ length: 40 }, () =>
          fetch(new URL("/streams?limit=5", running.url), { headers: adminAuthorization }),
        ),
      );
      for (let sample = 0; sample < 50; sample++) {
        const held = await admin.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE '%FROM workflow_streams%'`,
          [name],
        );
        mostHeld = Math.max(mostHeld, (held.rows[0] as { n: number }).n);
        await sleep(20);
      }
      await client.query("ROLLBACK");
      responses = await pending;
    } finally {
      client.release();
      await lock.end();
    }
    expect(mostHeld).toBe(MAX_CONCURRENT_LISTINGS);
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status !== 200 && status !== 503)).toEqual([]);
    expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(
      MAX_CONCURRENT_LISTINGS + MAX_WAITING_LISTINGS,
    );
    for (const response of responses.filter((r) => r.status === 503)) {
      expect(response.headers.get("retry-after")).toBe("1");
      expect(await response.json()).toMatchObject({ type: "urn:glyph-streams:problem:busy" });
    }
  });

  it("row 3: a body that stops arriving over a real connection is answered 408 and the connection closed", async () => {
    const streamId = crypto.randomUUID();
    const startedAt = Date.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(running.url.port), running.url.hostname, () => {
        socket.write(
          `POST /streams/${streamId}/events HTTP/1.1\r\nHost: ${running.url.host}\r\n` +
            `Authorization: ${adminAuthorization.authorization}\r\nContent-Type: application/json\r\n` +
            'Content-Length: 200\r\n\r\n{"events":[',
        );
      });
      let received = "";
      socket.on("data", (chunk) => {
        received += chunk.toString();
      });
      socket.on("close", () => resolve(received));
      socket.on("error", reject);
      socket.setTimeout(20_000, () => socket.destroy(new Error(`no answer in 20 s: ${received}`)));
    });
    const took = Date.now() - startedAt;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain("urn:glyph-streams:problem:body_timeout");
    expect(took).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 100);
    const head = await fetch(new URL(`/streams/${streamId}`, running.url), { headers: adminAuthorization });
    expect(head.status).toBe(404);
  });

  it("row 5: with a wrong database role, every route answers a fixed sentence, never the server's words", async () => {
    const wrongRole = new URL(url);
    wrongRole.username = "glyph_no_such_role";
    wrongRole.password = "not-the-password";
    const broken = await startWorker(bridge.proxyUrl, {
      DATABASE_URL: wrongRole.toString(),
      DATABASE_HTTP_ENDPOINT: hop.url,
    });
    try {
      const streamId = crypto.randomUUID();
      const requests: Array<[string, RequestInit]> = [
        ["/healthz", {}],
        ["/streams", { headers: adminAuthorization }],
        [`/streams/${streamId}`, { headers: adminAuthorization }],
        [`/streams/${streamId}/state`, { headers: adminAuthorization }],
        [`/streams/${streamId}/events`, { headers: adminAuthorization }],
        [
          `/streams/${streamId}/events`,
          {
            method: "POST",
            headers: { ...adminAuthorization, "content-type": "application/json" },
            body: JSON.stringify({ events: [{ event: { type: "context_updated", key: "k", value: 1 } }] }),
          },
        ],
      ];
      for (const [path, init] of requests) {
        const response = await fetch(new URL(path, broken.url), init);
        const text = await response.text();
        expect(response.status, `${path}: ${text}`).toBe(503);
        expect(response.headers.get("content-type")).toBe("application/problem+json");
        expect(text).not.toMatch(/glyph_no_such_role|role|password|authentication|SASL|SCRAM/i);
        const { detail } = JSON.parse(text) as { detail: string };
        if (path !== "/healthz") expect(detail).toBe(UNAVAILABLE_MESSAGE);
      }
    } finally {
      await broken.stop();
    }
  });
});
