import { createRoute } from "@hono/zod-openapi";
import { requireScope, streamAccess } from "../access-control";
import type { App } from "../app-env";
import { failureResponse, problemResponses } from "../problem";
import { StreamHeadResponse, StreamIdParam } from "../schemas";
import { jsonContent, serveRoute } from "../serve-route";
import { streamActor } from "../stream-actor-stub";

const route = createRoute({
  method: "get",
  path: "/streams/{streamId}",
  summary: "A stream's head: version, type, status, timestamps",
  description:
    "Read from the stream's actor, so it includes every acknowledged append. The ETag is the version.",
  middleware: [requireScope("read", "one stream")] as const,
  request: { params: StreamIdParam },
  responses: {
    200: { description: "The stream", ...jsonContent(StreamHeadResponse) },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});

export function registerStreamHead(app: App): void {
  serveRoute(app, route, async (c) => {
    const { streamId } = c.req.valid("param");
    const outcome = await streamActor(c.env, streamId).head(streamId, streamAccess(c));
    if (!outcome.ok) return failureResponse(c, outcome);
    c.header("etag", `"${outcome.stream.version}"`);
    return c.json(outcome.stream, 200);
  });
}
