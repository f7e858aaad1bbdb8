import { createRoute } from "@hono/zod-openapi";
import { WATCH_PROTOCOL } from "../../actor/watch-messages";
import { type Failure, unavailable } from "../../events/failure";
import { encodeCheckpoint, FEED_START } from "../../feed/checkpoint";
import { feedStreamTypes } from "../../feed/feed-access";
import { FEED_NOW, FEED_WATCH_HEADERS, feedActor } from "../../feed/feed-actor";
import { requireScope, streamAccess } from "../access-control";
import type { App } from "../app-env";
import { WatchFeedQuery } from "../feed-schemas";
import { failureResponse, problem, problemResponses } from "../problem";
import { serveRoute } from "../serve-route";
import { checkWatchUpgrade } from "../websocket-upgrade";

const route = createRoute({
  method: "get",
  path: "/watch",
  summary: "Follow every stream live over a WebSocket: the global feed",
  description:
    "Upgrades to a WebSocket that receives every event of the feed after the checkpoint `after` (all of it " +
    "when left out), in feed order, then every new commit, each exactly once. `after=now` starts at the feed's " +
    "head when the socket opens (as the feed orders it: a commit still held back by an older open transaction " +
    "comes later, decision 31 of ARCHITECTURE.md), and the first message is then " +
    '{"type":"started","checkpoint"}, the checkpoint that is. Messages are JSON: ' +
    '{"type":"event","event":StoredEvent plus checkpoint}, {"type":"caught_up","checkpoint"} (once), ' +
    '{"type":"error","code","message"}; send {"type":"ping"} to get {"type":"pong"}. Reconnect with ' +
    "after = the last checkpoint received (started's, an event's, or caught_up's): nothing is lost. `stream_type` " +
    "filters (comma-separated); a token limited to stream types gets only those. Subprotocols, if offered, " +
    `must include ${WATCH_PROTOCOL}; a browser passes its token beside it as the subprotocol bearer.<token>.`,
  middleware: [requireScope("read", "many streams")] as const,
  request: { query: WatchFeedQuery },
  responses: {
    101: { description: "Switching to the WebSocket protocol" },
    ...problemResponses(400, 401, 403, 426, 429, 503),
  },
});

export function registerWatchFeed(app: App): void {
  serveRoute(app, route, async (c) => {
    const query = c.req.valid("query");
    const upgrade = checkWatchUpgrade(c);
    if (upgrade instanceof Response) return upgrade;
    const types = feedStreamTypes(streamAccess(c).allowedStreamTypes, query.stream_type);
    if (!types.ok)
      return problem(c, { status: 403, code: "forbidden", title: "Forbidden", detail: types.message });
    const after = query.after ?? FEED_START;
    const headers = new Headers({
      upgrade: "websocket",
      [FEED_WATCH_HEADERS.after]: after === "now" ? FEED_NOW : encodeCheckpoint(after),
    });
    if (types.streamTypes !== undefined) {
      headers.set(FEED_WATCH_HEADERS.streamTypes, JSON.stringify(types.streamTypes));
    }
    if (upgrade.protocol !== undefined) headers.set(FEED_WATCH_HEADERS.protocol, upgrade.protocol);
    const response = await feedActor(c.env).fetch(new Request("https://feed-actor/watch", { headers }));
    // after=now: the actor could not read the feed's head (it logged why).
    if (response.status === 503) {
      const failure = (await response.json().catch(() => undefined)) as Failure | undefined;
      return failureResponse(c, failure?.code === undefined ? unavailable() : failure);
    }
    return response;
  });
}
