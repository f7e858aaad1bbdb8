import { createRoute } from "@hono/zod-openapi";
import { requireScope, streamAccess } from "../access-control";
import type { App } from "../app-env";
import { failureResponse, problemResponses } from "../problem";
import { EventsPage, ReadEventsQuery, StreamIdParam } from "../schemas";
import { jsonContent, serveRoute } from "../serve-route";
import { streamActor } from "../stream-actor-stub";

const route = createRoute({
  method: "get",
  path: "/streams/{streamId}/events",
  summary: "Read a page of a stream's events",
  description:
    "Forward from `from` (default 1) or backward from `from` (default: the newest). `next` links the next page.",
  middleware: [requireScope("read", "one stream")] as const,
  request: { params: StreamIdParam, query: ReadEventsQuery },
  responses: {
    200: { description: "A page of events", ...jsonContent(EventsPage) },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

export function registerReadEvents(app: App): void {
  serveRoute(app, route, async (c) => {
    const { streamId } = c.req.valid("param");
    const { from, limit, direction } = c.req.valid("query");
    const outcome = await streamActor(c.env, streamId).readEvents(
      streamId,
      { limit, direction, ...(from === undefined ? {} : { fromVersion: from }) },
      streamAccess(c),
    );
    if (!outcome.ok) return failureResponse(c, outcome);
    const last = outcome.events[outcome.events.length - 1];
    let next: string | null = null;
    if (last !== undefined && outcome.more) {
      const nextFrom = direction === "forward" ? last.version + 1 : last.version - 1;
      if (nextFrom >= 1)
        next = `/streams/${streamId}/events?from=${nextFrom}&limit=${limit}&direction=${direction}`;
    }
    return c.json({ stream_id: streamId, events: outcome.events, next }, 200);
  });
}
