import { createRoute } from "@hono/zod-openapi";
import { withTimeout } from "../../db/with-timeout";
import { logServiceFault, toFailure } from "../../events/failure";
import { encodeCheckpoint, FEED_START } from "../../feed/checkpoint";
import { feedStreamTypes } from "../../feed/feed-access";
import { readFeed } from "../../feed/feed-statements";
import { requireScope, streamAccess } from "../access-control";
import type { App } from "../app-env";
import { DatabaseGate } from "../database-gate";
import { FeedPage, FeedQuery } from "../feed-schemas";
import { MAX_CONCURRENT_LISTINGS, MAX_WAITING_LISTINGS } from "../limits";
import { failureResponse, problem, problemResponses } from "../problem";
import { requestDatabase } from "../request-database";
import { jsonContent, serveRoute } from "../serve-route";

/** Per isolate: feed reads are not serialized by any actor, so they take turns here, as listings do. */
const feedReads = new DatabaseGate(MAX_CONCURRENT_LISTINGS, MAX_WAITING_LISTINGS);

const route = createRoute({
  method: "get",
  path: "/events",
  summary: "Read a page of the global feed: every stream's events in commit order",
  description:
    "Events of all streams after the checkpoint `after`, in one order that never changes and never skips: " +
    "an event becomes visible only once every transaction older than its own has ended, so a reader that " +
    "continues from the last `checkpoint` it got misses nothing. Each event is the StoredEvent of the " +
    "per-stream routes plus its `checkpoint`. `stream_type` and `event_type` filter (comma-separated lists). " +
    "A token limited to stream types reads only those; a token limited to streams cannot read the feed.",
  middleware: [requireScope("read", "many streams")] as const,
  request: { query: FeedQuery },
  responses: {
    200: { description: "A page of the feed", ...jsonContent(FeedPage) },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

export function registerReadFeed(app: App): void {
  serveRoute(app, route, async (c) => {
    const query = c.req.valid("query");
    const types = feedStreamTypes(streamAccess(c).allowedStreamTypes, query.stream_type);
    if (!types.ok)
      return problem(c, { status: 403, code: "forbidden", title: "Forbidden", detail: types.message });
    const config = c.get("config");
    const slot = await feedReads.acquire(config.databaseTimeoutMs);
    if (slot === "busy") {
      return problem(c, {
        status: 503,
        code: "busy",
        title: "Busy",
        detail: `More than ${MAX_CONCURRENT_LISTINGS + MAX_WAITING_LISTINGS} feed reads are running or waiting here; retry in a second.`,
        headers: { "retry-after": "1" },
      });
    }
    const { db, release } = requestDatabase(config, slot);
    try {
      const after = query.after ?? FEED_START;
      const events = await withTimeout(
        readFeed(db, {
          after,
          limit: query.limit,
          streamTypes: types.streamTypes,
          eventTypes: query.event_type,
        }),
        config.databaseTimeoutMs,
      );
      const next = events.at(-1)?.checkpoint ?? encodeCheckpoint(after);
      return c.json({ events, next }, 200);
    } catch (error) {
      return failureResponse(c, logServiceFault(toFailure(error), error, { operation: "read_feed" }));
    } finally {
      release();
    }
  });
}
