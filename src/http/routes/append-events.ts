import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type AppendCall, unpackAppendAnswer } from "../../actor/actor-protocol";
import type { ExpectedVersion } from "../../events/store";
import { requireScope, streamAccess } from "../access-control";
import type { App } from "../app-env";
import { failureResponse, problem, problemResponses } from "../problem";
import { readBody } from "../read-body";
import { requireJson } from "../require-json";
import { AppendBody, AppendResponse, StreamIdParam } from "../schemas";
import { jsonContent, serveRoute } from "../serve-route";
import { streamActor } from "../stream-actor-stub";

const route = createRoute({
  method: "post",
  path: "/streams/{streamId}/events",
  summary: "Append events to a stream",
  description:
    "Appends one or more events atomically. The expected version comes from `expected_version` or an " +
    '`If-Match: "<version>"` header (`*` = the stream exists). Repeating an append with the same event ids ' +
    "answers 200 with the original versions and writes nothing. `if` makes the append conditional on the " +
    "workflow state (412 when it does not hold).",
  middleware: [requireScope("append", "one stream"), requireJson("the events"), readBody] as const,
  request: {
    params: StreamIdParam,
    body: { required: true, ...jsonContent(AppendBody) },
  },
  responses: {
    ...appendResponses("An idempotent repeat: nothing written"),
    ...problemResponses(400, 401, 403, 408, 409, 412, 413, 415, 422, 429, 503),
  },
});

/** `If-Match: "7"` → 7, `*` → stream_exists; undefined when absent; a problem when malformed. */
function expectedFromIfMatch(c: Context, header: string | undefined): ExpectedVersion | undefined | Response {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === "*") return "stream_exists";
  const match = /^"(\d{1,15})"$/.exec(value);
  if (match?.[1] !== undefined) return Number(match[1]);
  return problem(c, {
    status: 400,
    code: "invalid_request",
    title: "Invalid request",
    detail: `If-Match must be the stream's ETag, such as "7" (with the quotes), or *; got ${JSON.stringify(value.slice(0, 40))}.`,
  });
}

export function registerAppendEvents(app: App): void {
  serveRoute(app, route, async (c) => {
    const startedAt = Date.now();
    const { streamId } = c.req.valid("param");
    const body = c.req.valid("json");
    const fromHeader = expectedFromIfMatch(c, c.req.header("if-match"));
    if (fromHeader instanceof Response) return fromHeader;
    if (
      fromHeader !== undefined &&
      body.expected_version !== undefined &&
      fromHeader !== body.expected_version
    ) {
      return problem(c, {
        status: 400,
        code: "invalid_request",
        title: "Invalid request",
        detail: `If-Match says ${JSON.stringify(fromHeader)} but expected_version says ${JSON.stringify(body.expected_version)}; send one of them.`,
      });
    }
    return appendThroughActor(
      c,
      {
        streamId,
        expectedVersion: fromHeader ?? body.expected_version ?? "any",
        events: body.events,
        ...(body.stream_type === undefined ? {} : { streamType: body.stream_type }),
        ...(body.if === undefined ? {} : { condition: JSON.stringify(body.if) }),
        ...(body.turn === undefined ? {} : { turn: body.turn }),
        ...streamAccess(c),
      },
      startedAt,
    );
  });
}

/**
 * An append through the stream's actor, answered as this route answers it: 201 (or 200
 * for an idempotent repeat) with the AppendResponse body, the new version as ETag,
 * Server-Timing and Location; a problem document for a refusal. The webhook route
 * answers its appends the same way.
 */
export async function appendThroughActor<E extends { Bindings: Env }>(
  c: Context<E>,
  command: AppendCall,
  startedAt: number = Date.now(),
): Promise<Response> {
  const { streamId } = command;
  const outcome = unpackAppendAnswer(await streamActor(c.env, streamId).append(command));
  if (!outcome.ok) return failureResponse(c, outcome);
  const { result, timing } = outcome;
  const totalMs = Date.now() - startedAt;
  c.header("etag", `"${result.version}"`);
  c.header(
    "server-timing",
    `queue;dur=${timing.queueMs}, db;dur=${timing.databaseMs}, actor;dur=${timing.totalMs}, total;dur=${totalMs}`,
  );
  c.header("location", `/streams/${streamId}/events?from=${result.versions[0] ?? result.version}`);
  return c.json(
    {
      stream_id: result.streamId,
      stream_type: result.streamType,
      version: result.version,
      versions: result.versions,
      event_ids: result.eventIds,
      idempotent: result.idempotent,
    },
    result.idempotent ? 200 : 201,
  );
}

/** The documented answers of an append: 201, or 200 for a repeat (`repeat` says what one is on this route). */
export function appendResponses(repeat: string) {
  return {
    201: { description: "Appended", ...jsonContent(AppendResponse) },
    200: { description: repeat, ...jsonContent(AppendResponse) },
  };
}
