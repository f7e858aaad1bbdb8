import { createRoute, z } from "@hono/zod-openapi";
import { WATCH_HEADERS } from "../../actor/stream-actor";
import { WATCH_PROTOCOL } from "../../actor/watch-messages";
import { requireScope, streamAccess } from "../access-control";
import type { App } from "../app-env";
import { problemResponses } from "../problem";
import { StreamIdParam } from "../schemas";
import { serveRoute } from "../serve-route";
import { streamActor } from "../stream-actor-stub";
import { checkWatchUpgrade } from "../websocket-upgrade";

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
    `with from = the last version received. Subprotocols, if offered, must include ${WATCH_PROTOCOL} (the one answered); ` +
    "a browser passes its token beside it as the subprotocol bearer.<token>.",
  middleware: [requireScope("read", "one stream")] as const,
  request: { params: StreamIdParam, query: WatchQuery },
  responses: {
    101: { description: "Switching to the WebSocket protocol" },
    ...problemResponses(400, 401, 403, 426, 429),
  },
});

export function registerWatchStream(app: App): void {
  serveRoute(app, route, async (c) => {
    const { streamId } = c.req.valid("param");
    const { from } = c.req.valid("query");
    const upgrade = checkWatchUpgrade(c);
    if (upgrade instanceof Response) return upgrade;
    const headers = new Headers({
      upgrade: "websocket",
      [WATCH_HEADERS.streamId]: streamId,
      [WATCH_HEADERS.from]: String(from ?? 0),
    });
    if (upgrade.protocol !== undefined) headers.set(WATCH_HEADERS.protocol, upgrade.protocol);
    const principal = c.get("principal");
    if (principal !== undefined) headers.set(WATCH_HEADERS.tokenId, principal.tokenId);
    const { allowedStreamTypes } = streamAccess(c);
    if (allowedStreamTypes !== undefined) {
      headers.set(WATCH_HEADERS.allowedStreamTypes, JSON.stringify(allowedStreamTypes));
    }
    return streamActor(c.env, streamId).fetch(new Request("https://actor/watch", { headers }));
  });
}
