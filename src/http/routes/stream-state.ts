import { createRoute } from "@hono/zod-openapi";
import { requireScope, streamAccess } from "../access-control";
import type { App } from "../app-env";
import { failureResponse, problemResponses } from "../problem";
import { StateQuery, StateResponse, StreamIdParam } from "../schemas";
import { jsonContent, serveRoute } from "../serve-route";
import { streamActor } from "../stream-actor-stub";

const route = createRoute({
  method: "get",
  path: "/streams/{streamId}/state",
  summary: "The workflow state, now or at version `at`",
  description:
    "The current state comes from the actor's cache. With `at`, the state at that version is rebuilt from the " +
    "nearest snapshot at or below it plus the events after (time travel). The ETag is the version.",
  middleware: [requireScope("read", "one stream")] as const,
  request: { params: StreamIdParam, query: StateQuery },
  responses: {
    200: { description: "The state", ...jsonContent(StateResponse) },
    304: { description: "Not modified (If-None-Match matched the version)" },
    ...problemResponses(400, 401, 403, 404, 429, 500, 503),
  },
});

export function registerStreamState(app: App): void {
  serveRoute(app, route, async (c) => {
    const { streamId } = c.req.valid("param");
    const { at } = c.req.valid("query");
    const outcome = await streamActor(c.env, streamId).state(streamId, at, streamAccess(c));
    if (!outcome.ok) return failureResponse(c, outcome);
    const etag = `"${outcome.state.version}"`;
    if (c.req.header("if-none-match") === etag) return c.body(null, 304, { etag });
    c.header("etag", etag);
    return c.json({ stream_id: streamId, version: outcome.state.version, state: outcome.state }, 200);
  });
}
