import type { Context } from "hono";
import { WATCH_PROTOCOL } from "../actor/watch-messages";
import { problem } from "./problem";

/**
 * What a watch route checks before it hands the upgrade to an actor: a WebSocket
 * upgrade (426 otherwise), and, when the client offers subprotocols, ours among them
 * (400 otherwise). Returns the problem to answer, or the subprotocol to answer with
 * (undefined when none was offered).
 */
export function checkWatchUpgrade(c: Context): Response | { protocol: string | undefined } {
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
  return { protocol: offered.length > 0 ? WATCH_PROTOCOL : undefined };
}
