import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DatabaseError, Pool, type PoolClient, type QueryArrayConfig, type QueryArrayResult } from "pg";
import { localToolRefusal } from "./local-tool-request";

// A local stand-in for Neon's SQL-over-HTTP endpoint (`POST https://<host>/sql`, what
// the driver's `neon()` and `neon().transaction()` call), in front of an ordinary
// PostgreSQL. The real driver reaches it by configuration alone:
//
//   neonConfig.fetchEndpoint = proxy.fetchEndpoint;   // http://127.0.0.1:<port>/sql/<secret>
//
// Whoever reaches it runs SQL as the database's user, so, like the WebSocket bridge, it
// serves only this project's own tools (localToolRefusal): the secret path of this run
// (`/sql/<random>`, in DATABASE_HTTP_ENDPOINT and nowhere else), no browser (no Origin,
// no Sec-Fetch-*), this machine as the Host (no DNS-rebound name).
//
// The protocol follows the driver (@neondatabase/serverless 1.2, `neon()` in index.mjs)
// and Neon's proxy (proxy/src/serverless/sql_over_http.rs and json.rs):
//
// * Request headers: `Neon-Connection-String` (user, password and database are used;
//   host and port are NOT: like the WebSocket bridge, this server only ever reaches its
//   own target, so it is never an open proxy), `Neon-Raw-Text-Output` and
//   `Neon-Array-Mode` (only the exact value "true" counts, as at Neon), and for batches
//   `Neon-Batch-Isolation-Level` (ReadUncommitted | ReadCommitted | RepeatableRead |
//   Serializable; anything else is 400 "invalid isolation level"),
//   `Neon-Batch-Read-Only`, `Neon-Batch-Deferrable`. `Authorization: Bearer <jwt>`
//   (Neon's JWT auth) cannot be checked locally and is refused with 400.
// * Body: `{query, params?, arrayMode?}` or `{queries: [{query, params?, arrayMode?}, ...]}`.
//   Params are text or null (JSON numbers, booleans and objects become their JSON
//   text, JSON arrays PostgreSQL array literals, as at Neon). Every statement runs with
//   the extended protocol, so a query string holds one statement, as at Neon.
// * A batch runs in one transaction (BEGIN with the requested isolation level, READ
//   ONLY, DEFERRABLE; COMMIT; ROLLBACK on the first error), answered as
//   `{results: [...]}`, with the batch headers echoed in the response.
// * A result: `{rowAsArray, fields: [{name, dataTypeID, tableID, columnID,
//   dataTypeSize, dataTypeModifier, format: "text"}], rows, command, rowCount}`. Values
//   are PostgreSQL's text output (raw text mode, what the driver always asks for, and
//   parses with its own type parsers); without raw text mode booleans, int2/int4,
//   float4/float8, json/jsonb and arrays of built-in types become JSON values, as
//   Neon does.
// * Errors: a PostgreSQL error is 400 with `{message, code, detail, hint, position,
//   internalPosition, internalQuery, severity, where, table, column, schema, dataType,
//   constraint, file, line, routine}` (absent fields null), which the driver copies onto
//   its NeonDbError, so SQLSTATEs such as 23505 and the constraint name survive. Bad
//   requests (malformed JSON, bad headers) are 400 with a `message` and `code: ""`;
//   a body over the limit 413; a response over the limit 507; an unreachable server
//   500. Nothing a client sends can crash the process.

export interface NeonHttpProxyOptions {
  /** The PostgreSQL server every query goes to, whatever host the connection string names. */
  target: { host: string; port: number };
  /** 0 (default) picks a free port. The server binds to 127.0.0.1 only. */
  port?: number;
  /**
   * The secret path to serve. A proxy restarted on the port of an earlier one passes that
   * one's `path`, so the endpoint already handed out stays valid; a new random path when absent.
   */
  path?: string;
  /** Most server connections per set of credentials (Neon's proxy pools its connections too). Default 10. */
  maxConnections?: number;
  /** A pooled connection unused this long is closed. Default 10 000 ms. */
  idleTimeoutMs?: number;
  /** Largest request body; Neon's default is 10 MiB. */
  maxRequestBytes?: number;
  /** Largest response body; Neon's default is 10 MiB. */
  maxResponseBytes?: number;
}

export interface NeonHttpProxy {
  /** The value for `neonConfig.fetchEndpoint` (and DATABASE_HTTP_ENDPOINT): http://127.0.0.1:<port>/sql/<secret> */
  readonly fetchEndpoint: string;
  readonly port: number;
  /** The secret path (`/sql/<secret>`). */
  readonly path: string;
  /** Server connections this proxy holds now (busy and idle). */
  openConnections(): number;
  /** Cuts every server connection it holds, busy or idle (a network failure, as both sides see it), but keeps serving. */
  dropConnections(): void;
  close(): Promise<void>;
}

const HOST = "127.0.0.1";

/** A fresh secret path: 24 random bytes, base64url. */
export function newProxyPath(): string {
  return `/sql/${randomBytes(24).toString("base64url")}`;
}
const MiB = 1024 * 1024;
/** Distinct sets of credentials with a pool of their own; the least recently used one is closed beyond this. */
const MAX_POOLS = 8;
const CONNECT_TIMEOUT_MS = 10_000;
const APPLICATION_NAME = "neon-http-proxy";

const ISOLATION_LEVELS: Record<string, string> = {
  ReadUncommitted: "READ UNCOMMITTED",
  ReadCommitted: "READ COMMITTED",
  RepeatableRead: "REPEATABLE READ",
  Serializable: "SERIALIZABLE",
};

/** Every value as PostgreSQL's text output: the driver parses them itself. */
const RAW_TEXT = { getTypeParser: () => (value: string) => value };

interface QueryData {
  query: string;
  params: (string | null)[];
  arrayMode: boolean | undefined;
}

interface RequestHeaders {
  rawTextOutput: boolean;
  arrayMode: boolean;
  isolationLevel: string | undefined;
  readOnly: boolean;
  deferrable: boolean;
}

interface Credentials {
  user: string;
  password: string;
  database: string;
}

/** A failure answered to the client: an HTTP status and a JSON body the driver understands. */
class HttpFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extraHeaders: Record<string, string> = {},
  ) {
    super(message);
  }
}

export async function startNeonHttpProxy(options: NeonHttpProxyOptions): Promise<NeonHttpProxy> {
  const secretPath = options.path ?? newProxyPath();
  const maxRequestBytes = options.maxRequestBytes ?? 10 * MiB;
  const maxResponseBytes = options.maxResponseBytes ?? 10 * MiB;
  const pools = new Map<string, Pool>();
  /** Every server connection of every pool, to cut them all at once. */
  const clients = new Set<PoolClient>();
  let closing = false;

  function poolFor(credentials: Credentials): Pool {
    const key = JSON.stringify([credentials.user, credentials.password, credentials.database]);
    const existing = pools.get(key);
    if (existing !== undefined) {
      // Most recently used last, so the first entry is the one to close when there are too many.
      pools.delete(key);
      pools.set(key, existing);
      return existing;
    }
    const pool = new Pool({
      host: options.target.host,
      port: options.target.port,
      ...credentials,
      max: options.maxConnections ?? 10,
      idleTimeoutMillis: options.idleTimeoutMs ?? 10_000,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: APPLICATION_NAME,
    });
    // An idle connection that breaks (server restart) is only dropped from the pool.
    pool.on("error", () => undefined);
    pool.on("connect", (client) => {
      clients.add(client);
      // A connection that breaks while a request holds it (a fault test, a server restart)
      // fails that request's query; without a listener the client's error would also crash the process.
      client.on("error", () => undefined);
    });
    pool.on("remove", (client) => clients.delete(client));
    pools.set(key, pool);
    if (pools.size > MAX_POOLS) {
      const [oldestKey, oldest] = pools.entries().next().value as [string, Pool];
      pools.delete(oldestKey);
      void oldest.end().catch(() => undefined);
    }
    return pool;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const denied = localToolRefusal(request, secretPath, HOST);
    if (denied?.status === 403)
      throw new HttpFailure(403, "forbidden: this endpoint serves local tools only");
    if (denied !== undefined)
      throw new HttpFailure(404, "not found: this server answers POST on its own path only");
    if (request.method !== "POST") {
      throw new HttpFailure(405, "method not allowed: use POST", { Allow: "POST" });
    }
    const headers = readHeaders(request);
    const credentials = readCredentials(request);
    const body = await readBody(request, maxRequestBytes);
    const payload = parsePayload(body);
    if (closing) throw new HttpFailure(503, "the proxy is shutting down");

    const pool = poolFor(credentials);
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw connectFailure(error);
    }
    let reusable = true;
    const responseHeaders: Record<string, string> = {};
    let json: string;
    try {
      if (Array.isArray(payload)) {
        if (headers.readOnly) responseHeaders["Neon-Batch-Read-Only"] = "true";
        if (headers.deferrable) responseHeaders["Neon-Batch-Deferrable"] = "true";
        const isolation = request.headers["neon-batch-isolation-level"];
        if (typeof isolation === "string") responseHeaders["Neon-Batch-Isolation-Level"] = isolation;
        json = JSON.stringify({ results: await runBatch(client, payload, headers) });
      } else {
        json = JSON.stringify(await runQuery(client, payload, headers));
      }
      // A statement such as BEGIN leaves the connection inside a transaction: never hand it to another request.
      if (client.getTransactionStatus() !== "I") reusable = false;
    } catch (error) {
      if (!(error instanceof DatabaseError) || client.getTransactionStatus() !== "I") reusable = false;
      throw error;
    } finally {
      client.release(!reusable);
    }
    if (Buffer.byteLength(json) > maxResponseBytes) {
      throw new HttpFailure(507, `response is too large (max is ${maxResponseBytes} bytes)`);
    }
    send(response, 200, json, responseHeaders);
  }

  const server = createServer((request, response) => {
    request.on("error", () => undefined);
    response.on("error", () => undefined);
    handle(request, response).catch((error: unknown) => {
      if (response.headersSent || response.destroyed) return;
      const { status, body, headers } = describeFailure(error);
      send(response, status, body, headers);
      // A body over the limit was not read to its end: do not read the rest.
      if (status === 413) response.on("finish", () => request.socket.destroy());
    });
  });
  // Malformed HTTP: answer 400 and close, as Node does by default, but never throw.
  server.on("clientError", (_error, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, HOST, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    fetchEndpoint: `http://${HOST}:${port}${secretPath}`,
    port,
    path: secretPath,
    openConnections: () => [...pools.values()].reduce((sum, pool) => sum + pool.totalCount, 0),
    dropConnections: () => {
      for (const client of clients) client.connection.stream.destroy();
    },
    close: async () => {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.all([...pools.values()].map((pool) => pool.end().catch(() => undefined)));
      pools.clear();
      server.closeAllConnections();
      await closed;
    },
  };
}

/** One statement; its result as Neon's proxy writes it. */
async function runQuery(client: PoolClient, data: QueryData, headers: RequestHeaders): Promise<object> {
  const config: QueryArrayConfig & { queryMode: "extended" } = {
    text: data.query,
    values: data.params,
    rowMode: "array",
    types: RAW_TEXT,
    // The extended protocol even without parameters: one statement per query, as at Neon.
    queryMode: "extended",
  };
  const result: QueryArrayResult = await client.query(config);
  const arrayMode = data.arrayMode ?? headers.arrayMode;
  const fields = result.fields.map((field) => ({
    name: field.name,
    dataTypeID: field.dataTypeID,
    tableID: field.tableID,
    columnID: field.columnID,
    dataTypeSize: field.dataTypeSize,
    dataTypeModifier: field.dataTypeModifier,
    format: "text",
  }));
  const rows = result.rows.map((row) => {
    const values = row.map((value, index) =>
      value === null || headers.rawTextOutput
        ? (value as string | null)
        : textToJson(value as string, fields[index]?.dataTypeID ?? 0),
    );
    if (arrayMode) return values;
    const object: Record<string, unknown> = {};
    fields.forEach((field, index) => {
      object[field.name] = values[index];
    });
    return object;
  });
  return {
    rowAsArray: arrayMode,
    fields,
    rows,
    // Neon splits the command tag the same way: "INSERT 0 3" → INSERT, 3; "CREATE TABLE" → CREATE, null.
    command: result.command ?? "",
    rowCount: result.rowCount ?? null,
  };
}

/** Every statement in one transaction: all commit, or the first error rolls all back. */
async function runBatch(
  client: PoolClient,
  queries: QueryData[],
  headers: RequestHeaders,
): Promise<object[]> {
  let begin = "BEGIN";
  if (headers.isolationLevel !== undefined) begin += ` ISOLATION LEVEL ${headers.isolationLevel}`;
  if (headers.readOnly) begin += " READ ONLY";
  if (headers.deferrable) begin += " DEFERRABLE";
  await client.query(begin);
  const results: object[] = [];
  try {
    for (const data of queries) results.push(await runQuery(client, data, headers));
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
  await client.query("COMMIT");
  return results;
}

function readHeaders(request: IncomingMessage): RequestHeaders {
  const isTrue = (name: string) => request.headers[name] === "true";
  const level = request.headers["neon-batch-isolation-level"];
  let isolationLevel: string | undefined;
  if (level !== undefined) {
    isolationLevel = typeof level === "string" ? ISOLATION_LEVELS[level] : undefined;
    if (isolationLevel === undefined) throw new HttpFailure(400, "invalid isolation level");
  }
  return {
    rawTextOutput: isTrue("neon-raw-text-output"),
    arrayMode: isTrue("neon-array-mode"),
    isolationLevel,
    readOnly: isTrue("neon-batch-read-only"),
    deferrable: isTrue("neon-batch-deferrable"),
  };
}

function readCredentials(request: IncomingMessage): Credentials {
  if (request.headers.authorization !== undefined) {
    throw new HttpFailure(
      400,
      "missing authentication credentials: the local proxy cannot check JWTs (Authorization: Bearer); put the password in the connection string",
    );
  }
  const header = request.headers["neon-connection-string"];
  if (typeof header !== "string" || header === "") {
    throw new HttpFailure(400, "invalid header: neon-connection-string");
  }
  let url: URL;
  try {
    url = new URL(header);
  } catch (error) {
    throw new HttpFailure(400, `invalid connection string: ${(error as Error).message}`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new HttpFailure(400, "incorrect scheme");
  }
  const decode = (value: string) => {
    try {
      return decodeURIComponent(value);
    } catch {
      throw new HttpFailure(400, "invalid connection string: bad percent-encoding");
    }
  };
  const database = decode(url.pathname.replace(/^\//, ""));
  if (database === "") throw new HttpFailure(400, "missing database name");
  const user = decode(url.username);
  if (user === "") throw new HttpFailure(400, "missing username");
  // An empty password is passed on as such: a local server may trust local connections.
  return { user, password: decode(url.password), database };
}

function readBody(request: IncomingMessage, limit: number): Promise<string> {
  // Events rather than for-await: leaving a for-await loop early destroys the socket,
  // and the 413 could not be sent.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.pause();
        request.removeAllListeners("data");
        reject(new HttpFailure(413, `request is too large (max is ${limit} bytes)`));
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

/** A single query, or a batch as an array. */
function parsePayload(body: string): QueryData | QueryData[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    throw new HttpFailure(400, `could not parse the HTTP request body: ${(error as Error).message}`);
  }
  const bad = (why: string) => new HttpFailure(400, `could not parse the HTTP request body: ${why}`);
  const queryData = (value: unknown, where: string): QueryData => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw bad(`${where} must be an object`);
    }
    const { query, params, arrayMode } = value as Record<string, unknown>;
    if (typeof query !== "string") throw bad(`${where}.query must be a string`);
    if (params !== undefined && !Array.isArray(params)) throw bad(`${where}.params must be an array`);
    if (arrayMode !== undefined && arrayMode !== null && typeof arrayMode !== "boolean") {
      throw bad(`${where}.arrayMode must be a boolean`);
    }
    return {
      query,
      params: (params ?? []).map((param) => jsonToPgText(param)),
      arrayMode: arrayMode ?? undefined,
    };
  };
  if (typeof json === "object" && json !== null && !Array.isArray(json)) {
    const { query, queries } = json as Record<string, unknown>;
    if (query !== undefined || !Array.isArray(queries)) return queryData(json, "body");
    return queries.map((item, index) => queryData(item, `queries[${index}]`));
  }
  throw bad("expected {query, params} or {queries: [...]}");
}

/** A JSON parameter as the text PostgreSQL receives (Neon's json_to_pg_text). */
function jsonToPgText(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return jsonToPgArray(value);
  return JSON.stringify(value);
}

function jsonToPgArray(value: unknown): string {
  if (value === null) return "NULL";
  if (Array.isArray(value)) return `{${value.map(jsonToPgArray).join(",")}}`;
  // Inside an array literal every element is written as a JSON string: quoted, with \ and " escaped.
  if (typeof value === "object") return JSON.stringify(JSON.stringify(value));
  return JSON.stringify(value);
}

// Built-in types Neon turns into JSON values when raw text output is off.
const BOOL = 16;
const INT2 = 21;
const INT4 = 23;
const FLOAT4 = 700;
const FLOAT8 = 701;
const JSON_TYPE = 114;
const JSONB = 3802;
/** Array types of built-in element types, by oid (pg_type.typarray). */
const ARRAY_ELEMENTS: Record<number, number> = {
  1000: BOOL,
  1001: 17, // bytea
  1002: 18, // char
  1005: INT2,
  1007: INT4,
  1009: 25, // text
  1014: 1042, // bpchar
  1015: 1043, // varchar
  1016: 20, // int8
  1021: FLOAT4,
  1022: FLOAT8,
  1028: 26, // oid
  1115: 1114, // timestamp
  1182: 1082, // date
  1183: 1083, // time
  1185: 1184, // timestamptz
  1231: 1700, // numeric
  199: JSON_TYPE,
  3807: JSONB,
  2951: 2950, // uuid
};

/** PostgreSQL's text output as JSON (Neon's pg_text_to_json); other types stay text. */
function textToJson(text: string, type: number): unknown {
  const element = ARRAY_ELEMENTS[type];
  if (element !== undefined) {
    const parsed = parsePgArray(text, element);
    return parsed === undefined ? text : parsed;
  }
  switch (type) {
    case BOOL:
      return text === "t";
    case INT2:
    case INT4:
      return Number.parseInt(text, 10);
    case FLOAT4:
    case FLOAT8: {
      const number = Number(text);
      return Number.isFinite(number) ? number : text;
    }
    case JSON_TYPE:
    case JSONB:
      return JSON.parse(text);
    default:
      return text;
  }
}

/** An array's text output as nested JSON arrays; undefined if it does not parse. */
function parsePgArray(text: string, element: number): unknown[] | undefined {
  let at = 0;
  // Bounds decoration such as [0:1]={…} carries nothing JSON can say.
  if (text.startsWith("[")) at = text.indexOf("=") + 1;
  const list = (): unknown[] | undefined => {
    if (text[at] !== "{") return undefined;
    at++;
    const items: unknown[] = [];
    if (text[at] === "}") {
      at++;
      return items;
    }
    for (;;) {
      if (text[at] === "{") {
        const inner = list();
        if (inner === undefined) return undefined;
        items.push(inner);
      } else if (text[at] === '"') {
        let value = "";
        at++;
        while (at < text.length && text[at] !== '"') {
          if (text[at] === "\\") at++;
          value += text[at] ?? "";
          at++;
        }
        if (text[at] !== '"') return undefined;
        at++;
        items.push(textToJson(value, element));
      } else {
        let end = at;
        while (end < text.length && text[end] !== "," && text[end] !== "}") end++;
        const item = text.slice(at, end).trim();
        at = end;
        items.push(item === "NULL" ? null : textToJson(item, element));
      }
      if (text[at] === ",") {
        at++;
        continue;
      }
      if (text[at] === "}") {
        at++;
        return items;
      }
      return undefined;
    }
  };
  try {
    const parsed = list();
    return parsed !== undefined && at === text.length ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Connecting failed: a PostgreSQL refusal (bad password, no such database) is the client's 400, anything else 500. */
function connectFailure(error: unknown): unknown {
  if (error instanceof DatabaseError) return error;
  return new HttpFailure(500, `could not connect to the database: ${describe(error)}`);
}

function describeFailure(error: unknown): { status: number; body: string; headers: Record<string, string> } {
  if (error instanceof HttpFailure) {
    return { status: error.status, body: errorBody(error.message), headers: error.extraHeaders };
  }
  if (error instanceof DatabaseError) {
    return {
      status: 400,
      headers: {},
      body: JSON.stringify({
        message: error.message,
        code: error.code ?? "",
        detail: error.detail ?? null,
        hint: error.hint ?? null,
        position: error.position ?? null,
        internalPosition: error.internalPosition ?? null,
        internalQuery: error.internalQuery ?? null,
        severity: error.severity ?? null,
        where: error.where ?? null,
        table: error.table ?? null,
        column: error.column ?? null,
        schema: error.schema ?? null,
        dataType: error.dataType ?? null,
        constraint: error.constraint ?? null,
        file: error.file ?? null,
        line: error.line ?? null,
        routine: error.routine ?? null,
      }),
    };
  }
  // The connection broke during the query (Neon answers these 400 too, without a SQLSTATE).
  return { status: 400, headers: {}, body: errorBody(describe(error)) };
}

/** The shape Neon gives errors that are not PostgreSQL's: a message and an empty code. */
function errorBody(message: string): string {
  return JSON.stringify({ message, code: "" });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Node's connection errors carry their reason in code (an AggregateError's message may be empty).
  const code = (error as { code?: unknown }).code;
  const message = error.message || error.name;
  return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
}

function send(response: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  response.writeHead(status, {
    ...headers,
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(body),
  });
  response.end(body);
}
