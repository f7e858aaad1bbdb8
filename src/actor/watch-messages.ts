import { z } from "zod";
import { StoredEvent } from "../events/types";

// The WebSocket protocol of GET /streams/:id/watch. Every message is one JSON text frame.

/** The subprotocol a client offers (a browser beside its `bearer.<token>`) and the server answers with. */
export const WATCH_PROTOCOL = "glyph-streams.v1";

/** Server → client. */
export const WatchServerMessage = z.discriminatedUnion("type", [
  /** One event, in version order, each exactly once. */
  z.object({ type: z.literal("event"), event: StoredEvent }),
  /** The catch-up reached the stream's head; what follows is live. Sent once per connection. */
  z.object({ type: z.literal("caught_up"), version: z.number().int().min(0) }),
  /** The answer to {"type":"ping"}, sent without waking the actor. */
  z.object({ type: z.literal("pong") }),
  /** Something the client should know; the connection may close after it. */
  z.object({ type: z.literal("error"), code: z.string(), message: z.string() }),
]);
export type WatchServerMessage = z.infer<typeof WatchServerMessage>;

/** Client → server: only keep-alives; the stream is read-only over this socket. */
export const WatchClientMessage = z.object({ type: z.literal("ping") });

/**
 * The close code of a watcher refused for a cap (issue 10, row 3): its stream has
 * WATCHERS_PER_STREAM watchers already, or its token WATCHERS_PER_TOKEN on all streams.
 * The reason says which; reconnecting at once would meet the same cap.
 */
export const TOO_MANY_WATCHERS = 4429;

/** The exact frames of the automatic ping/pong (matched byte for byte by the runtime). */
export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';

/** What each socket remembers across hibernation. */
export const WatcherAttachment = z.object({
  /** The last version sent on this socket. */
  cursor: z.number().int().min(0),
  /** Whether caught_up was sent. */
  caughtUp: z.boolean(),
  /** From the watcher's token: the stream types it may see; absent for no limit. */
  allowedStreamTypes: z.array(z.string()).optional(),
  /** The lease this watcher holds in its token's WatcherQuota, given back when it closes. */
  lease: z.object({ tokenId: z.string(), watcherId: z.string() }).optional(),
});
export type WatcherAttachment = z.infer<typeof WatcherAttachment>;
