import { createRoute, z } from "@hono/zod-openapi";
import { WATCH_HEADERS } from "../../actor/stream-actor";
import { WATCH_PROTOCOL } from "../../actor/watch-messages";
import { requireScope, streamAccess } from "../access-control";
import type { App } from "../app-env";
import { problem, problemResponses } from "../problem";
import { StreamIdParam } from "../schemas";
import { serveRoute } from "../serve-route";
import { streamActor } from "../stream-actor-stub";

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
    ...problemResponses(400, 401, 403, 426),
  },
});

export function registerWatchStream(app: App): void {
  serveRoute(app, route, async (c) => {
    const { streamId } = c.req.valid("param");
    const { from } = c.req.valid("query");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return problem(c, {
        status: 426,
        code: "upgrade_required",
        title: "Upgrade required",
        detail: "This route serves a WebSocket: connect with a WebSocket client (Upgrade: websocket).",
        headers: { upgrade: "websocket" },
      });
    }
    const offered = (c.req.header("sec-websocket-protocol") ?? "")
      .split(",")
      .map((protocol) => protocol.trim())
      .filter((protocol) => protocol !== "");
    if (offered.length > 0 && !offered.includes(WATCH_PROTOCOL)) {
      // A client that offers subprotocols fails a handshake answered without one of them,
      // so refuse now, with a reason, instead of upgrading to a socket it will drop.
      // Not 401: the credentials were accepted; the offered subprotocols are what to fix.
      return problem(c, {
        status: 400,
        code: "subprotocol_required",
        title: "Subprotocol required",
        detail:
          `Offer the WebSocket subprotocol ${WATCH_PROTOCOL} (the one this server answers with) in ` +
          `Sec-WebSocket-Protocol, beside bearer.<token> when the token travels there: ` +
          `new WebSocket(url, ["${WATCH_PROTOCOL}", "bearer.<token>"]).`,
      });
    }
    const headers = new Headers({
      upgrade: "websocket",
      [WATCH_HEADERS.streamId]: streamId,
      [WATCH_HEADERS.from]: String(from ?? 0),
    });
    if (offered.length > 0) headers.set(WATCH_HEADERS.protocol, WATCH_PROTOCOL);
    const { allowedStreamTypes } = streamAccess(c);
    if (allowedStreamTypes !== undefined) {
      headers.set(WATCH_HEADERS.allowedStreamTypes, JSON.stringify(allowedStreamTypes));
    }
    return streamActor(c.env, streamId).fetch(new Request("https://actor/watch", { headers }));
  });
}
