import { createRoute, z } from "@hono/zod-openapi";
import { WATCH_HEADERS } from "../../actor/stream-actor";
import { streamAccess } from "../access-control";
import { problem } from "../problem";
import { problemResponses } from "../problem-responses";
import { StreamIdParam } from "../schemas";
import { type App, serveRoute } from "../serve-route";
import { streamActor } from "../stream-actor-stub";

/** The subprotocol a browser names (beside its token) and the server echoes. */
export const WATCH_PROTOCOL = "glyph-streams.v1";

const WatchQuery = z.object({
  from: z
    .string()
    .regex(/^\d{1,15}$/, { error: "from must be a whole number: the last version you have (0 for all)" })
    .transform(Number)
    .optional(),
});

const route = createRoute({
  method: "get",
  path: "/streams/{streamId}/watch",
  summary: "Follow a stream live over a WebSocket",
  description:
    "Upgrades to a WebSocket that receives every event after `from` in version order, then every new commit, " +
    'each exactly once. Messages are JSON: {"type":"event","event":StoredEvent}, {"type":"caught_up","version":N}, ' +
    '{"type":"error","code","message"}; send {"type":"ping"} to get {"type":"pong"}. On close code 1011 reconnect ' +
    "with from = the last version received.",
  request: { params: StreamIdParam, query: WatchQuery },
  responses: {
    101: { description: "Switching to the WebSocket protocol" },
    ...problemResponses(400, 401, 403, 426),
  },
});

export function registerWatchStream(app: App): void {
  serveRoute(app, route, async (c) => {
    const { streamId } = c.req.valid("param");
    const { from } = c.req.valid("query");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return problem(
        c,
        426,
        "upgrade_required",
        "Upgrade required",
        "This route serves a WebSocket: connect with a WebSocket client (Upgrade: websocket).",
        {},
        { upgrade: "websocket" },
      );
    }
    const offered = (c.req.header("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
    const headers = new Headers({
      upgrade: "websocket",
      [WATCH_HEADERS.streamId]: streamId,
      [WATCH_HEADERS.from]: String(from ?? 0),
    });
    if (offered.includes(WATCH_PROTOCOL)) headers.set(WATCH_HEADERS.protocol, WATCH_PROTOCOL);
    const { allowedStreamTypes } = streamAccess(c);
    if (allowedStreamTypes !== undefined) {
      headers.set(WATCH_HEADERS.allowedStreamTypes, JSON.stringify(allowedStreamTypes));
    }
    return streamActor(c.env, streamId).fetch(new Request("https://actor/watch", { headers }));
  });
}
