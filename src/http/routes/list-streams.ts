import { createRoute } from "@hono/zod-openapi";
import { withTimeout } from "../../db/with-timeout";
import { logServiceFault, toFailure } from "../../events/failure";
import { requireScope, streamAccess } from "../access-control";
import type { App } from "../app-env";
import { DatabaseGate } from "../database-gate";
import { MAX_CONCURRENT_LISTINGS, MAX_WAITING_LISTINGS } from "../limits";
import { failureResponse, problem, problemResponses } from "../problem";
import { requestStore } from "../request-database";
import { ListStreamsQuery, StreamsPage } from "../schemas";
import { jsonContent, serveRoute } from "../serve-route";
import { encodeNewestCursor } from "../streams-cursor";

/** Per isolate: listings are not serialized by any actor, so they take turns here. */
const listings = new DatabaseGate(MAX_CONCURRENT_LISTINGS, MAX_WAITING_LISTINGS);

const route = createRoute({
  method: "get",
  path: "/streams",
  summary: "List streams, optionally by type and status",
  description:
    "Pages in stream id order (`order=stream_id`, the default), or newest created first with `order=newest` " +
    "(streams created at the same microsecond by stream id, descending). Pass `next_cursor` back as `cursor`, " +
    "with the same `order` and filters, for the next page; it is null after the last page. In newest-first order " +
    "the cursor is opaque (the last stream's creation time and id): no stream is skipped or repeated among those " +
    "that existed when you started; one created while you page is usually ahead of the first page (its creation " +
    "time is its transaction's start, so one committed late can sort among pages already read).",
  middleware: [requireScope("read", "many streams")] as const,
  request: { query: ListStreamsQuery },
  responses: {
    200: { description: "A page of streams", ...jsonContent(StreamsPage) },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

export function registerListStreams(app: App): void {
  serveRoute(app, route, async (c) => {
    const query = c.req.valid("query");
    const { allowedStreamTypes } = streamAccess(c);
    if (
      allowedStreamTypes !== undefined &&
      (query.type === undefined || !allowedStreamTypes.includes(query.type))
    ) {
      return problem(c, {
        status: 403,
        code: "forbidden",
        title: "Forbidden",
        detail: `This token may only list streams of type ${allowedStreamTypes.join(", ")}: add type=<one of them> to the query.`,
      });
    }
    const config = c.get("config");
    const slot = await listings.acquire(config.databaseTimeoutMs);
    if (slot === "busy") {
      return problem(c, {
        status: 503,
        code: "busy",
        title: "Busy",
        detail: `More than ${MAX_CONCURRENT_LISTINGS + MAX_WAITING_LISTINGS} listings are running or waiting here; retry in a second, or page with fewer requests at once.`,
        headers: { "retry-after": "1" },
      });
    }
    const { store, release } = requestStore(c, config, slot);
    try {
      const filters = {
        limit: query.limit,
        ...(query.type === undefined ? {} : { streamType: query.type }),
        ...(query.status === undefined ? {} : { status: query.status }),
      };
      const cursor = query.cursor;
      if (query.order === "newest") {
        const page = await withTimeout(
          store.listNewestStreams({
            ...filters,
            ...(cursor?.order === "newest" ? { before: cursor.key } : {}),
          }),
          config.databaseTimeoutMs,
        );
        const full = page.streams.length === query.limit && page.last !== undefined;
        return c.json(
          { streams: page.streams, next_cursor: full && page.last ? encodeNewestCursor(page.last) : null },
          200,
        );
      }
      const streams = await withTimeout(
        store.listStreams({
          ...filters,
          ...(cursor?.order === "stream_id" ? { afterStreamId: cursor.streamId } : {}),
        }),
        config.databaseTimeoutMs,
      );
      const last = streams[streams.length - 1];
      const next_cursor = streams.length === query.limit && last !== undefined ? last.stream_id : null;
      return c.json({ streams, next_cursor }, 200);
    } catch (error) {
      return failureResponse(c, logServiceFault(toFailure(error), error, { operation: "list_streams" }));
    } finally {
      release();
    }
  });
}
