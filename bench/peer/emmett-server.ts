import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  CommandHandler,
  type Event,
  type ExpectedStreamVersion,
  isExpectedVersionConflictError,
  STREAM_DOES_NOT_EXIST,
  STREAM_EXISTS,
} from "@event-driven-io/emmett";
import { getPostgreSQLEventStore } from "@event-driven-io/emmett-postgresql";
// The driver Emmett's PostgreSQL store runs on (through @event-driven-io/dumbo); imported
// only to count the statements it sends.
import pg from "pg";
import { holdLifeline } from "../../scripts/local/lifeline";
import type { WorkflowEvent } from "../../src/events/types";
import { AppendBody } from "../../src/http/schemas";
import { applyEvent } from "../../src/state/apply-event";
import { InvalidEventSequence } from "../../src/state/invalid-event-sequence";
import { ConditionFailed, checkCondition } from "../../src/state/state-condition";
import { emptyWorkflowState, type WorkflowState } from "../../src/state/workflow-state";

// The peer a user would pick instead of glyph-streams: Emmett's PostgreSQL event store
// behind a small Node HTTP server, run by `npm run bench` as a child process (its own
// event loop, its own CPU in /proc). It serves the routes the benchmark drives with the
// request and response shapes glyph-streams uses:
//
//   POST /streams/:id/events   {events: [{event, event_id?, metadata?}], expected_version?}
//                              → 201 {stream_id, stream_type, version, versions, event_ids, idempotent}
//                              → 409 problem {expected, actual} · 412 problem (its `if`) · 422 problem (the workflow rules) · 400 · 401
//   GET  /streams/:id/state    → 200 {stream_id, version, state} · 404
//   GET  /healthz, GET /_peer/stats (statements sent so far, counted in this process)
//
// Each append is written the way an Emmett user writes a command handler: Emmett's
// CommandHandler reads the stream and folds it with `evolve` (aggregateStream), runs the
// decision on the state, and appends what it returns with the expected version
// (appendToStream). The decision and `evolve` are this repository's own reducer
// (src/state/apply-event.ts), so both services enforce the same rules; the body is
// validated with the same zod schema the Worker uses (src/http/schemas.ts).
//
// A body's `if` (a condition on the workflow state) has no counterpart in Emmett; the
// handler emulates it the way an Emmett user would: the decision checks the condition on
// the state it read (glyph-streams' own checkCondition) and refuses with the same 412
// problem, and the append then expects the version that state had, so a writer that
// moved the stream in between turns it into a version conflict.
//
// Expected versions map onto Emmett's: N → N, "no_stream" → STREAM_DOES_NOT_EXIST,
// "stream_exists" → STREAM_EXISTS, "any" → none given, so the handler expects the
// version it read (Emmett's default: the decision was taken on that state). Retries on
// a version conflict are off, Emmett's default; a request header
// `x-peer-retry: on-version-conflict` turns on Emmett's own policy
// (`retry: {onVersionConflict: true}`: 3 retries, 100 ms apart growing 1.5×) for one
// request. Not modelled: stream types (every stream is `workflow-<id>`, the name
// Emmett derives the type from), idempotent repeats by event id (Emmett keeps no
// deduplication store; ids given are stored as message ids), If-Match.
//
// Environment: PEER_DATABASE_URL (its own database), AUTH_TOKENS (glyph-streams'
// format: SHA-256 hashes of the bearer tokens accepted). Prints one JSON line
// {"url"} once it listens; stops when its stdin closes or it is signalled.

const HOST = "127.0.0.1";
const MAX_BODY_BYTES = 1024 * 1024;
const STREAM_TYPE = "workflow";

type StoredWorkflowEvent = Event<WorkflowEvent["type"], WorkflowEvent, { messageId: string }>;

// ------------------------------------------------------------------ counting statements

let statements = 0;
const originalQuery = pg.Client.prototype.query;
// Every statement Emmett sends goes through pg's Client#query (BEGIN and COMMIT too).
pg.Client.prototype.query = function countedQuery(this: pg.Client, ...args: unknown[]) {
  statements++;
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
} as typeof originalQuery;

// ------------------------------------------------------------------ the command handler

const evolve = (state: WorkflowState, event: StoredWorkflowEvent): WorkflowState =>
  applyEvent(state, event.data);

const handle = CommandHandler<WorkflowState, StoredWorkflowEvent>({
  evolve,
  initialState: emptyWorkflowState,
  mapToStreamId: (id) => `${STREAM_TYPE}-${id}`,
});

type Expected = "any" | "no_stream" | "stream_exists" | number;

function toEmmettExpected(expected: Expected): ExpectedStreamVersion | undefined {
  if (expected === "any") return undefined;
  if (expected === "no_stream") return STREAM_DOES_NOT_EXIST;
  if (expected === "stream_exists") return STREAM_EXISTS;
  return BigInt(expected);
}

// ------------------------------------------------------------------ HTTP

const accepted = new Set(
  (JSON.parse(process.env.AUTH_TOKENS ?? "[]") as Array<{ sha256?: unknown }>)
    .map((token) => token.sha256)
    .filter((hash): hash is string => typeof hash === "string"),
);

function authorized(request: IncomingMessage): boolean {
  const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "");
  if (!match?.[1]) return false;
  const digest = createHash("sha256").update(match[1]).digest();
  for (const hash of accepted) {
    const expected = Buffer.from(hash, "hex");
    if (expected.length === digest.length && timingSafeEqual(expected, digest)) return true;
  }
  return false;
}

function send(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": status >= 400 ? "application/problem+json" : "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

function problem(
  response: ServerResponse,
  status: number,
  code: string,
  detail: string,
  extensions: Record<string, unknown> = {},
): void {
  send(response, status, { ...extensions, type: `urn:glyph-streams:problem:${code}`, status, detail });
}

function readBody(request: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on("end", () =>
      resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString("utf8")),
    );
    request.on("error", reject);
  });
}

const eventStore = getPostgreSQLEventStore(process.env.PEER_DATABASE_URL ?? "");

async function append(request: IncomingMessage, response: ServerResponse, streamId: string): Promise<void> {
  const text = await readBody(request);
  if (text === undefined) return problem(response, 413, "payload_too_large", "The body is over 1 MiB.");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return problem(response, 400, "invalid_request", "The body is not JSON.");
  }
  const parsed = AppendBody.safeParse(json);
  if (!parsed.success) {
    return problem(response, 400, "invalid_request", parsed.error.issues[0]?.message ?? "invalid body");
  }
  const { events, expected_version: expected = "any", if: condition } = parsed.data;
  const eventIds = events.map((item) => item.event_id ?? randomUUID());
  const emmettEvents: StoredWorkflowEvent[] = events.map((item, index) => ({
    type: item.event.type,
    data: item.event,
    metadata: { ...(item.metadata as Record<string, unknown> | undefined), messageId: eventIds[index] ?? "" },
  }));
  // The decision: the workflow rules, checked on the state the handler read.
  const decide = (state: WorkflowState): StoredWorkflowEvent[] => {
    const mismatch = condition && checkCondition(condition, state);
    if (mismatch) throw new ConditionFailed(streamId, condition, mismatch, state.version);
    let draft = state;
    for (const item of events) draft = applyEvent(draft, item.event);
    return emmettEvents;
  };
  const expectedStreamVersion = toEmmettExpected(expected);
  const retry = request.headers["x-peer-retry"] === "on-version-conflict";
  try {
    const result = await handle(eventStore, streamId, decide, {
      ...(expectedStreamVersion === undefined ? {} : { expectedStreamVersion }),
      ...(retry ? { retry: { onVersionConflict: true } } : {}),
    });
    const version = Number(result.nextExpectedStreamVersion);
    send(
      response,
      201,
      {
        stream_id: streamId,
        stream_type: STREAM_TYPE,
        version,
        versions: events.map((_, index) => version - events.length + index + 1),
        event_ids: eventIds,
        idempotent: false,
      },
      { etag: `"${version}"` },
    );
  } catch (error) {
    if (isExpectedVersionConflictError(error)) {
      // Emmett knows the current version when the read already disagreed; when the
      // append lost a race after the read it reports -1: then `actual` is null.
      const current = Number((error as { current?: unknown }).current);
      const actual = Number.isInteger(current) && current >= 0 ? current : null;
      return problem(response, 409, "concurrency_conflict", error.message, { expected, actual });
    }
    if (error instanceof ConditionFailed) {
      return problem(response, 412, "condition_failed", error.message, error.details);
    }
    if (error instanceof InvalidEventSequence) {
      return problem(response, 422, "invalid_event_sequence", error.message, error.details);
    }
    throw error;
  }
}

async function state(response: ServerResponse, streamId: string): Promise<void> {
  const result = await eventStore.aggregateStream<WorkflowState, StoredWorkflowEvent>(
    `${STREAM_TYPE}-${streamId}`,
    { evolve, initialState: emptyWorkflowState },
  );
  if (!result.streamExists)
    return problem(response, 404, "stream_not_found", `Stream ${streamId} has no events.`);
  const version = Number(result.currentStreamVersion);
  send(response, 200, { stream_id: streamId, version, state: result.state }, { etag: `"${version}"` });
}

const STREAM_ROUTE = /^\/streams\/([0-9a-fA-F-]{36})\/(events|state)$/;

async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? "/").split("?")[0] ?? "/";
  if (path === "/healthz") return send(response, 200, { ok: true });
  if (path === "/_peer/stats") return send(response, 200, { statements });
  if (!authorized(request)) return problem(response, 401, "unauthorized", "Send a valid bearer token.");
  const match = STREAM_ROUTE.exec(path);
  const streamId = match?.[1]?.toLowerCase();
  if (match === null || streamId === undefined) return problem(response, 404, "not_found", "No such route.");
  if (match[2] === "events" && request.method === "POST") return append(request, response, streamId);
  if (match[2] === "state" && request.method === "GET") return state(response, streamId);
  return problem(response, 405, "method_not_allowed", "Method not allowed.");
}

async function main(): Promise<void> {
  if (!process.env.PEER_DATABASE_URL) throw new Error("PEER_DATABASE_URL is not set");
  // Emmett creates (or updates) its tables on first use; do it before the first request.
  await eventStore.schema.migrate();
  const server = createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
    route(request, response).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      if (!response.headersSent) problem(response, 503, "unavailable", message);
      else response.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  holdLifeline(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await eventStore.close();
  });
  process.stdout.write(`${JSON.stringify({ url: `http://${HOST}:${address.port}/` })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`peer (Emmett) failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
