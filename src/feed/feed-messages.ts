import { z } from "zod";
import { FeedEvent } from "./feed-event";

// The WebSocket protocol of GET /watch: the per-stream watch's (src/actor/watch-messages.ts:
// the same subprotocol, pings and errors), with checkpoints where that one has versions.

/** Server → client. */
export const FeedWatchServerMessage = z.discriminatedUnion("type", [
  /**
   * Only on a socket opened with after=now, and before anything else: the checkpoint it
   * starts after (the feed's head when it opened). Reconnecting with it as `after`
   * resumes exactly there.
   */
  z.object({ type: z.literal("started"), checkpoint: z.string() }),
  /** One event, in feed order, each exactly once. */
  z.object({ type: z.literal("event"), event: FeedEvent }),
  /**
   * The catch-up reached the feed's head; what follows is live. Sent once per connection.
   * `checkpoint` is where the head was: reconnecting with it loses nothing, even when the
   * filter let no event through.
   */
  z.object({ type: z.literal("caught_up"), checkpoint: z.string() }),
  /** The answer to {"type":"ping"}, sent without waking the actor. */
  z.object({ type: z.literal("pong") }),
  /** Something the client should know; the connection may close after it. */
  z.object({ type: z.literal("error"), code: z.string(), message: z.string() }),
]);
export type FeedWatchServerMessage = z.infer<typeof FeedWatchServerMessage>;

/** What each socket remembers across hibernation. */
export const FeedWatcherAttachment = z.object({
  /** The checkpoint of the last event sent on this socket (or of the head when it caught up). */
  cursor: z.string(),
  /** Whether caught_up was sent. */
  caughtUp: z.boolean(),
  /** The stream types this watcher gets (what it asked for, within its token's); absent for all. */
  streamTypes: z.array(z.string()).optional(),
});
export type FeedWatcherAttachment = z.infer<typeof FeedWatcherAttachment>;
