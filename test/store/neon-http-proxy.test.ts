import { request } from "node:http";
import { createConnection, createServer } from "node:net";
import { NeonDbError, neon, neonConfig, type Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type NeonHttpProxy, startNeonHttpProxy } from "../../scripts/local/neon-http-proxy";
import { PgEventStore } from "../../src/events/postgres";
import { applyEvents } from "../../src/state/apply-event";
import { emptyWorkflowState } from "../../src/state/workflow-state";
import { openTestPool } from "../support/database";
import { contextUpdated, started, stepActivated } from "../support/event-builders";

// The local /sql endpoint (scripts/local/neon-http-proxy.ts) with the REAL driver:
// neon() and neon().transaction() reach it through neonConfig.fetchEndpoint alone,
// and must behave as they do against Neon: same values, same errors, same atomicity.
// The WebSocket Pool (through the run's bridge) is the reference for what the rows
// must be.

const databaseUrl = inject("databaseUrl");
const target = new URL(databaseUrl);
const TABLE = `neon_http_proxy_test_${crypto.randomUUID().replaceAll("-", "")}`;
const POOL_SIZE = 4;

const pool = openTestPool(2);
let proxy: NeonHttpProxy;
/** Requests the driver sent over HTTP, counted by a fetch wrapper (one per neon() call or transaction). */
let requests = 0;
const sql = neon(databaseUrl);

beforeAll(async () => {
  proxy = await startNeonHttpProxy({
    target: { host: target.hostname, port: Number(target.port || 5432) },
    maxConnections: POOL_SIZE,
  });
  // The only switch between Neon and the local proxy: configuration.
  neonConfig.fetchEndpoint = proxy.fetchEndpoint;
  neonConfig.fetchFunction = (input: RequestInfo | URL, init?: RequestInit) => {
    requests++;
    return fetch(input, init);
  };
  await pool.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, note text NOT NULL)`);
});

afterAll(async () => {
  await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await pool.end();
  await proxy?.close();
});

/** What the proxy answers: a result, a batch's results, or an error. */
interface ProxyAnswer {
  rowAsArray?: boolean;
  rows?: unknown[];
  results?: { rows: unknown[] }[];
  message?: string;
  code?: string;
}

/** POSTs a raw body to the proxy, as a client other than the driver could. */
async function post(body: string, headers: Record<string, string> = {}, endpoint = proxy.fetchEndpoint) {
  const response = await fetch(endpoint, {
    method: "POST",
    body,
    headers: { "Neon-Connection-String": databaseUrl, ...headers },
  });
  return { status: response.status, headers: response.headers, json: (await response.json()) as ProxyAnswer };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function caught(promise: Promise<unknown>): Promise<NeonDbError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(NeonDbError);
    return error as NeonDbError;
  }
  throw new Error("expected the query to fail");
}

describe("single statements through neon()", () => {
  // Every parameter type the store sends, each compared with what the WebSocket Pool returns.
  const statement = `SELECT $1::uuid AS id, $2::text AS text, $3::int AS int, $4::bigint AS big,
                            $5::jsonb AS doc, $6::timestamptz AS at, $7::uuid[] AS ids, $8::text[] AS texts,
                            $9::bigint[] AS bigs, $10::int AS nothing, $11::jsonb AS nested_text`;
  const params = [
    crypto.randomUUID(),
    `quote ' double " backslash \\ newline \n unicode ✓ 𝄞`,
    -2147483648,
    9007199254740993n,
    { a: [1, { b: null }], "key with spaces": "✓", deep: { x: "y" } },
    new Date("2026-03-01T10:00:00.123Z"),
    [crypto.randomUUID(), crypto.randomUUID()],
    ["plain", "with,comma", 'with"quote', "with\\backslash", "NULL", "", null],
    ["1", "9007199254740993"],
    null,
    '{"as":"text"}',
  ];

  it("returns the same rows as the WebSocket Pool for every parameter type the store uses", async () => {
    const viaHttp = await sql.query(statement, params);
    const viaPool = await pool.query(statement, params);
    expect(viaHttp).toEqual(viaPool.rows);
    expect(viaHttp[0]).toMatchObject({
      int: -2147483648,
      big: "9007199254740993",
      doc: params[4],
      at: params[5],
      texts: params[7],
      nothing: null,
      nested_text: { as: "text" },
    });
  });

  it("answers full results with fields, dataTypeID, command and rowCount, in object or array mode", async () => {
    const full = await sql.query("SELECT $1::int AS n, $2::jsonb AS doc", [7, { a: 1 }], {
      fullResults: true,
    });
    expect(full).toMatchObject({
      command: "SELECT",
      rowCount: 1,
      rowAsArray: false,
      rows: [{ n: 7, doc: { a: 1 } }],
    });
    expect(full.fields.map((field) => [field.name, field.dataTypeID])).toEqual([
      ["n", 23],
      ["doc", 3802],
    ]);
    expect(full.fields[0]).toMatchObject({ tableID: 0, columnID: 0, dataTypeSize: 4, format: "text" });

    const rows = await neon(databaseUrl, { arrayMode: true })`SELECT 1::int AS a, 'x' AS b`;
    expect(rows).toEqual([[1, "x"]]);
    const arrays = await sql.query("SELECT 1::int AS a UNION ALL SELECT 2", [], {
      arrayMode: true,
      fullResults: true,
    });
    expect(arrays).toMatchObject({ rowAsArray: true, rows: [[1], [2]], rowCount: 2 });
  });

  it("reports the command and row count of writes", async () => {
    const inserted = await sql.query(
      `INSERT INTO ${TABLE} (id, note) VALUES (1, 'a'), (2, 'b') RETURNING id`,
      [],
      {
        fullResults: true,
      },
    );
    expect(inserted).toMatchObject({ command: "INSERT", rowCount: 2, rows: [{ id: 1 }, { id: 2 }] });
    const updated = await sql.query(`UPDATE ${TABLE} SET note = 'c' WHERE id = 1`, [], { fullResults: true });
    expect(updated).toMatchObject({ command: "UPDATE", rowCount: 1, rows: [], fields: [] });
    const deleted = await sql.query(`DELETE FROM ${TABLE} WHERE id IN (1, 2)`, [], { fullResults: true });
    expect(deleted).toMatchObject({ command: "DELETE", rowCount: 2 });
  });

  it("keeps the SQLSTATE, constraint and detail of a unique violation", async () => {
    await sql.query(`INSERT INTO ${TABLE} (id, note) VALUES (10, 'first')`);
    const error = await caught(sql.query(`INSERT INTO ${TABLE} (id, note) VALUES ($1, 'again')`, [10]));
    expect(error).toMatchObject({
      code: "23505",
      constraint: `${TABLE}_pkey`,
      table: TABLE,
      schema: "public",
      severity: "ERROR",
      detail: "Key (id)=(10) already exists.",
    });
    expect(error.message).toContain("duplicate key value violates unique constraint");
  });

  it("keeps other errors' fields: a syntax error's position, a missing column", async () => {
    const syntax = await caught(sql.query("SELECT * FORM nowhere"));
    expect(syntax).toMatchObject({ code: "42601", position: "10" });
    const column = await caught(sql.query(`SELECT missing FROM ${TABLE}`));
    expect(column.code).toBe("42703");
    // One statement per query, as at Neon (the extended protocol refuses two).
    const two = await caught(sql.query("SELECT 1; SELECT 2"));
    expect(two.code).toBe("42601");
  });

  it("never hands a connection left inside a transaction to the next request", async () => {
    const single = await startNeonHttpProxy({
      target: { host: target.hostname, port: Number(target.port || 5432) },
      maxConnections: 1,
    });
    try {
      const body = (query: string) => JSON.stringify({ query, params: [] });
      const headers = { "Neon-Raw-Text-Output": "true", "Neon-Array-Mode": "true" };
      const pid = async () =>
        (await post(body("SELECT pg_backend_pid()"), headers, single.fetchEndpoint)).json.rows;
      const first = await pid();
      expect(await pid()).toEqual(first);
      // BEGIN alone leaves its connection inside a transaction: it is closed, not pooled.
      expect((await post(body("BEGIN"), headers, single.fetchEndpoint)).status).toBe(200);
      expect(await pid()).not.toEqual(first);
    } finally {
      await single.close();
    }
  });
});

describe("transaction() through the proxy", () => {
  it("commits every statement together and answers each one's result", async () => {
    const results = await sql.transaction([
      sql`INSERT INTO ${sql.unsafe(TABLE)} (id, note) VALUES (20, 'a') RETURNING id`,
      sql`INSERT INTO ${sql.unsafe(TABLE)} (id, note) VALUES (21, 'b') RETURNING id`,
      sql`SELECT count(*)::int AS n FROM ${sql.unsafe(TABLE)} WHERE id IN (20, 21)`,
    ]);
    expect(results).toEqual([[{ id: 20 }], [{ id: 21 }], [{ n: 2 }]]);
  });

  it("rolls every statement back when one fails, and keeps the failing one's SQLSTATE", async () => {
    await sql.query(`INSERT INTO ${TABLE} (id, note) VALUES (30, 'taken')`);
    const before = requests;
    const error = await caught(
      sql.transaction([
        sql.query(`INSERT INTO ${TABLE} (id, note) VALUES (31, 'would be lost')`),
        sql.query(`UPDATE ${TABLE} SET note = 'changed' WHERE id = 30`),
        sql.query(`INSERT INTO ${TABLE} (id, note) VALUES (30, 'duplicate')`),
        sql.query(`INSERT INTO ${TABLE} (id, note) VALUES (32, 'never run')`),
      ]),
    );
    expect(requests - before).toBe(1);
    expect(error).toMatchObject({ code: "23505", constraint: `${TABLE}_pkey` });
    const rows = await pool.query(`SELECT id, note FROM ${TABLE} WHERE id BETWEEN 30 AND 32 ORDER BY id`);
    expect(rows.rows).toEqual([{ id: 30, note: "taken" }]);
  });

  it("runs the batch with the requested isolation level, read only and deferrable", async () => {
    const [settings] = await sql.transaction(
      [
        sql`SELECT current_setting('transaction_isolation') AS isolation,
                   current_setting('transaction_read_only') AS read_only,
                   current_setting('transaction_deferrable') AS deferrable`,
      ],
      { isolationLevel: "Serializable", readOnly: true, deferrable: true },
    );
    expect(settings).toEqual([{ isolation: "serializable", read_only: "on", deferrable: "on" }]);
    const [plain] = await sql.transaction(
      [sql`SELECT current_setting('transaction_isolation') AS isolation`],
      {
        isolationLevel: "RepeatableRead",
      },
    );
    expect(plain).toEqual([{ isolation: "repeatable read" }]);
    const readOnly = await caught(
      sql.transaction([sql.query(`INSERT INTO ${TABLE} (id, note) VALUES (40, 'x')`)], { readOnly: true }),
    );
    expect(readOnly.code).toBe("25006");
  });

  it("honours array mode and full results per statement", async () => {
    // The driver's types want one mode per batch; its code (and Neon) allow a mode per statement.
    const mixed = [
      sql.query("SELECT 1::int AS a", [], { arrayMode: true }),
      sql.query("SELECT 2::int AS b", [], { fullResults: true }),
    ] as unknown as Parameters<typeof sql.transaction>[0];
    const [first, second] = await sql.transaction(mixed);
    expect(first).toEqual([[1]]);
    expect(second).toMatchObject({ rows: [{ b: 2 }], command: "SELECT", rowCount: 1 });
  });
});

describe("under concurrent requests", () => {
  it("answers each request with its own result and holds no more connections than its pool", async () => {
    const peak = { connections: 0 };
    const watch = setInterval(() => {
      peak.connections = Math.max(peak.connections, proxy.openConnections());
    }, 2);
    try {
      const singles = Array.from({ length: 60 }, (_, i) =>
        sql.query("SELECT $1::int AS i, pg_sleep(0.005)::text AS slept", [i]),
      );
      const batches = Array.from({ length: 20 }, (_, i) =>
        sql.transaction([
          sql.query(`INSERT INTO ${TABLE} (id, note) VALUES ($1, 'concurrent')`, [1000 + i]),
          sql.query("SELECT $1::int AS i", [i]),
        ]),
      );
      const [singleRows, batchResults] = await Promise.all([Promise.all(singles), Promise.all(batches)]);
      expect(singleRows.map((rows) => rows[0]?.i)).toEqual(Array.from({ length: 60 }, (_, i) => i));
      expect(batchResults.map(([, rows]) => rows?.[0]?.i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    } finally {
      clearInterval(watch);
    }
    const stored = await pool.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE note = 'concurrent'`);
    expect(stored.rows[0]).toEqual({ n: 20 });
    expect(peak.connections).toBeGreaterThan(0);
    // Counted at the proxy: the server's pg_stat_activity also holds the connections of the
    // run's own /sql endpoint, which other tiers use at the same time under the same name.
    expect(peak.connections).toBeLessThanOrEqual(POOL_SIZE);
  });
});

describe("the protocol spoken by hand", () => {
  const headers = { "Neon-Raw-Text-Output": "true", "Neon-Array-Mode": "true" };

  it("answers malformed or misaddressed requests with the error shape the driver reads, and keeps serving", async () => {
    const bad = [
      "{not json",
      "",
      "[]",
      "42",
      JSON.stringify({ query: 1 }),
      JSON.stringify({ query: "SELECT 1", params: "x" }),
      JSON.stringify({ queries: [{ query: "SELECT 1" }, { nope: true }] }),
      JSON.stringify({ query: "SELECT 1", arrayMode: "yes" }),
    ];
    for (const body of bad) {
      const answer = await post(body, headers);
      expect(answer.status, body).toBe(400);
      expect(answer.json, body).toMatchObject({
        code: "",
        message: expect.stringContaining("could not parse"),
      });
    }
    const body = JSON.stringify({ query: "SELECT 1", params: [] });
    expect((await post(body, { ...headers, "Neon-Connection-String": "" })).json.message).toBe(
      "invalid header: neon-connection-string",
    );
    expect((await post(body, { ...headers, "Neon-Connection-String": "mysql://u@h/db" })).json.message).toBe(
      "incorrect scheme",
    );
    expect((await post(body, { ...headers, "Neon-Connection-String": "postgres://u@h" })).json.message).toBe(
      "missing database name",
    );
    expect((await post(body, { ...headers, Authorization: "Bearer x.y.z" })).status).toBe(400);
    const isolation = await post(JSON.stringify({ queries: [] }), { "Neon-Batch-Isolation-Level": "Chaos" });
    expect(isolation).toMatchObject({ status: 400, json: { message: "invalid isolation level" } });

    const get = await fetch(proxy.fetchEndpoint);
    expect(get.status).toBe(405);
    const elsewhere = await fetch(proxy.fetchEndpoint.replace("/sql", "/other"), { method: "POST", body });
    expect(elsewhere.status).toBe(404);

    // The driver turns such a 400 into a NeonDbError with the message and the empty code.
    const driverSide = await caught(
      sql.transaction([sql`SELECT 1`], {
        isolationLevel: "Chaos" as unknown as "Serializable",
      }),
    );
    expect(driverSide).toMatchObject({ message: "invalid isolation level", code: "" });

    // Still serving.
    expect(await sql`SELECT 1::int AS one`).toEqual([{ one: 1 }]);
  });

  it("refuses a body over the limit with 413 without reading the rest", async () => {
    const small = await startNeonHttpProxy({
      target: { host: target.hostname, port: Number(target.port || 5432) },
      maxRequestBytes: 1024,
    });
    try {
      const big = JSON.stringify({ query: "SELECT $1::text AS t", params: ["x".repeat(4096)] });
      const answer = await post(big, headers, small.fetchEndpoint);
      expect(answer).toMatchObject({
        status: 413,
        json: { message: "request is too large (max is 1024 bytes)" },
      });
      const fine = await post(JSON.stringify({ query: "SELECT 1 AS one" }), headers, small.fetchEndpoint);
      expect(fine.json.rows).toEqual([["1"]]);
    } finally {
      await small.close();
    }
  });

  it("survives garbage on the socket, a client that hangs up mid-body, and an unreachable server", async () => {
    const { port } = new URL(proxy.fetchEndpoint);
    const raw = (bytes: string) =>
      new Promise<string>((resolve) => {
        const socket = createConnection({ host: "127.0.0.1", port: Number(port) }, () => socket.end(bytes));
        let answer = "";
        socket.on("data", (chunk) => {
          answer += chunk.toString();
        });
        socket.on("close", () => resolve(answer));
        socket.on("error", () => resolve(answer));
      });
    expect(await raw("NOT HTTP AT ALL\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    // Announces 1000 bytes, sends 10, hangs up.
    await raw(
      `POST /sql HTTP/1.1\r\nHost: x\r\nNeon-Connection-String: ${databaseUrl}\r\nContent-Length: 1000\r\n\r\n{"query":`,
    );

    const nowhere = await startNeonHttpProxy({ target: { host: "127.0.0.1", port: await closedPort() } });
    try {
      const answer = await post(JSON.stringify({ query: "SELECT 1" }), headers, nowhere.fetchEndpoint);
      expect(answer.status).toBe(500);
      expect(answer.json.message).toMatch(/could not connect to the database/);
    } finally {
      await nowhere.close();
    }
    expect(await sql`SELECT 2::int AS two`).toEqual([{ two: 2 }]);
  });

  it("keeps an unknown database's SQLSTATE from the connection attempt", async () => {
    const missing = new URL(databaseUrl);
    missing.pathname = "/no_such_database_here";
    const error = await caught(neon(missing.toString())`SELECT 1`.then((x) => x));
    expect(error.code).toBe("3D000");
  });

  // The throwaway embedded server checks passwords (SCRAM); a TEST_DATABASE_URL server may trust local users.
  it.skipIf(inject("databaseKind") !== "embedded")(
    "passes the connection string's password on: a wrong one is PostgreSQL's 28P01",
    async () => {
      const wrong = new URL(databaseUrl);
      wrong.password = "not-the-password";
      const error = await caught(neon(wrong.toString())`SELECT 1`.then((x) => x));
      expect(error.code).toBe("28P01");
      expect(await sql`SELECT 3::int AS three`).toEqual([{ three: 3 }]);
    },
  );

  it("sends raw text in array mode, as the driver asks, and JSON values without raw text, as Neon does", async () => {
    const query = JSON.stringify({
      query: `SELECT true AS b, 2::int2 AS s, 3::int4 AS i, 4::int8 AS big, 1.5::float8 AS f, 'NaN'::float8 AS nan,
                     '{"a":[1,null]}'::jsonb AS j, ARRAY['a"b', NULL, 'c,d', '']::text[] AS t,
                     ARRAY[[1,2],[3,4]] AS m, ARRAY['{"x":1}'::jsonb] AS ja, $1::text AS p, $2::int[] AS pa`,
      params: [{ object: "as json text" }, [1, null, 3]],
    });
    const raw = await post(query, headers);
    expect(raw.json.rowAsArray).toBe(true);
    expect(raw.json.rows).toEqual([
      [
        "t",
        "2",
        "3",
        "4",
        "1.5",
        "NaN",
        '{"a": [1, null]}',
        '{"a\\"b",NULL,"c,d",""}',
        "{{1,2},{3,4}}",
        '{"{\\"x\\": 1}"}',
        '{"object":"as json text"}',
        "{1,NULL,3}",
      ],
    ]);
    const converted = await post(query);
    expect(converted.json.rowAsArray).toBe(false);
    expect(converted.json.rows).toEqual([
      {
        b: true,
        s: 2,
        i: 3,
        big: "4",
        f: 1.5,
        nan: "NaN",
        j: { a: [1, null] },
        t: ['a"b', null, "c,d", ""],
        m: [
          [1, 2],
          [3, 4],
        ],
        ja: [{ x: 1 }],
        p: '{"object":"as json text"}',
        pa: [1, null, 3],
      },
    ]);
  });

  it("answers a batch as {results} and echoes the batch headers", async () => {
    const answer = await post(
      JSON.stringify({ queries: [{ query: "SELECT 1 AS a" }, { query: "SELECT 2 AS b" }] }),
      {
        ...headers,
        "Neon-Batch-Isolation-Level": "ReadCommitted",
        "Neon-Batch-Read-Only": "true",
      },
    );
    expect(answer.status).toBe(200);
    expect(answer.json.results?.map((result) => result.rows)).toEqual([[["1"]], [["2"]]]);
    expect(answer.headers.get("neon-batch-read-only")).toBe("true");
    expect(answer.headers.get("neon-batch-isolation-level")).toBe("ReadCommitted");
  });
});

describe("only this project's own tools reach it", () => {
  /** A raw request with exactly these headers (fetch would not let a test set Host). */
  function raw(path: string, headers: Record<string, string>): Promise<number> {
    const { port } = new URL(proxy.fetchEndpoint);
    const body = JSON.stringify({ query: "SELECT 1 AS one" });
    return new Promise((resolve, reject) => {
      const sent = request(
        {
          host: "127.0.0.1",
          port: Number(port),
          path,
          method: "POST",
          headers: {
            "Neon-Connection-String": databaseUrl,
            "Content-Length": Buffer.byteLength(body),
            ...headers,
          },
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      sent.on("error", reject);
      sent.end(body);
    });
  }

  it("serves its secret path to a local tool, and refuses a browser, a foreign Host and any other path", async () => {
    const { path } = proxy;
    expect(path).toMatch(/^\/sql\/[A-Za-z0-9_-]{32}$/);
    expect(new URL(proxy.fetchEndpoint).pathname).toBe(path);
    expect(await raw(path, {})).toBe(200);
    expect(await raw(path, { Origin: "https://evil.example" })).toBe(403);
    expect(await raw(path, { "Sec-Fetch-Site": "cross-site" })).toBe(403);
    expect(await raw(path, { Host: "rebound.evil.example" })).toBe(403);
    expect(await raw("/sql", {})).toBe(404);
    expect(await raw(`${path}x`, {})).toBe(404);
  });

  it("keeps its path when brought back on its port", async () => {
    const again = await startNeonHttpProxy({
      target: { host: target.hostname, port: Number(target.port || 5432) },
      path: proxy.path,
    });
    try {
      expect(again.path).toBe(proxy.path);
      expect(again.fetchEndpoint).not.toBe(proxy.fetchEndpoint);
      expect(new URL(again.fetchEndpoint).pathname).toBe(proxy.path);
    } finally {
      await again.close();
    }
  });
});

describe("PgEventStore over neon()", () => {
  // The store's only need is query(text, values) → {rows, rowCount}: full results give
  // exactly that. Statements are counted here, HTTP requests by the fetch wrapper.
  let statements = 0;
  const overHttp = {
    query: (text: string, values: unknown[]) => {
      statements++;
      return sql.query(text, values, { fullResults: true });
    },
  };
  const store = new PgEventStore(overHttp as unknown as Pool);
  const reference = new PgEventStore(pool);

  it("appends with one HTTP request per statement (the actor's append: one) and reads back what the Pool reads", async () => {
    const streamId = crypto.randomUUID();
    const first = [started(), stepActivated("review")];
    const state1 = applyEvents(emptyWorkflowState(), first);
    let before = { requests, statements };
    const created = await store.append({
      streamId,
      expectedVersion: "no_stream",
      events: first.map((event) => ({ event })),
      stateAfter: state1,
    });
    // Exact version, trusted state, no caller ids: one statement, one request.
    expect({ requests: requests - before.requests, statements: statements - before.statements }).toEqual({
      requests: 1,
      statements: 1,
    });
    expect(created).toMatchObject({ version: 2, versions: [1, 2], idempotent: false });

    const next = [contextUpdated("a", { b: [1, "two", null], s: 'quote " ✓' })];
    const eventId = crypto.randomUUID();
    before = { requests, statements };
    const appended = await store.append({
      streamId,
      expectedVersion: 2,
      events: next.map((event) => ({ event, event_id: eventId, metadata: { by: "test" } })),
      stateAfter: applyEvents(state1, next),
    });
    expect(appended).toMatchObject({ version: 3, eventIds: [eventId] });
    // With caller ids the store may also look them up (until that folds into the append): still one request each.
    expect(requests - before.requests).toBe(statements - before.statements);

    expect(await store.loadEvents(streamId)).toEqual(await reference.loadEvents(streamId));
    expect(await store.getStreamHead(streamId)).toEqual(await reference.getStreamHead(streamId));
    expect(await store.getLatestSnapshot(streamId)).toEqual(await reference.getLatestSnapshot(streamId));
  });

  it("answers repeats and reused ids as over the Pool, also when two appends race for one id", async () => {
    const streamId = crypto.randomUUID();
    const events = [{ event: started(), event_id: crypto.randomUUID() }];
    const state = applyEvents(
      emptyWorkflowState(),
      events.map((item) => item.event),
    );
    await store.append({ streamId, expectedVersion: "no_stream", events, stateAfter: state });
    const repeat = await store.append({ streamId, expectedVersion: "no_stream", events, stateAfter: state });
    expect(repeat).toMatchObject({ idempotent: true, versions: [1] });
    const elsewhere = await store
      .append({ streamId: crypto.randomUUID(), expectedVersion: "no_stream", events, stateAfter: state })
      .catch((error: unknown) => error);
    expect(elsewhere).toMatchObject({ code: "idempotency_conflict" });

    // Two new streams, one new id, at once: one append wins; the other is refused, found
    // by the lookup or, when both looked before either wrote, by the unique index's
    // 23505 and its constraint name, which must survive the HTTP path.
    for (let round = 0; round < 5; round++) {
      const raced = [{ event: started(), event_id: crypto.randomUUID() }];
      const racedState = applyEvents(
        emptyWorkflowState(),
        raced.map((item) => item.event),
      );
      const outcomes = await Promise.allSettled(
        [crypto.randomUUID(), crypto.randomUUID()].map((id) =>
          store.append({ streamId: id, expectedVersion: "no_stream", events: raced, stateAfter: racedState }),
        ),
      );
      expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
      const refused = outcomes.find((outcome) => outcome.status === "rejected");
      expect(refused?.reason).toMatchObject({ code: "idempotency_conflict" });
    }
    expect((await reference.getStreamHead(streamId))?.version).toBe(1);
  });

  it("reports a moved stream as a conflict, as over the WebSocket Pool", async () => {
    const streamId = crypto.randomUUID();
    await reference.append({ streamId, expectedVersion: "no_stream", events: [{ event: started() }] });
    const stale = applyEvents(emptyWorkflowState(), [started()]);
    const conflict = await store
      .append({ streamId, expectedVersion: "no_stream", events: [{ event: started() }], stateAfter: stale })
      .catch((error: unknown) => error);
    expect(conflict).toMatchObject({ code: "concurrency_conflict" });
  });
});
