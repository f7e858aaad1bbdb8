import { answerClientFrame, closeQuietly, trySend } from "../actor/watch-socket";
import {
  compareCheckpoints,
  decodeCheckpoint,
  encodeCheckpoint,
  FEED_START,
  type FeedCheckpoint,
} from "./checkpoint";
import type { FeedEvent } from "./feed-event";
import { FeedWatcherAttachment, type FeedWatchServerMessage } from "./feed-messages";

/** Events one catch-up step sends a watcher before the feed actor serves the others. */
export const FEED_CATCH_UP_PAGE = 500;

/** Up to `limit` events of `streamTypes` (undefined: all) after `after` and not after `through`. */
export type ReadFeedPage = (
  after: FeedCheckpoint,
  limit: number,
  streamTypes: readonly string[] | undefined,
  through: FeedCheckpoint,
) => Promise<FeedEvent[]>;

interface Watcher {
  attachment: FeedWatcherAttachment;
  cursor: FeedCheckpoint;
}

/**
 * The all-streams watchers: their sockets (accepted through the Hibernation API), each
 * socket's attachment (the checkpoint of the last event sent, whether it was told it is
 * live, its stream types), and which of them still read history. The feed actor owns
 * the order: it reads the feed's new events after its tail and publishes them to the
 * live watchers, and between two such reads gives each watcher still behind one page
 * read up to the tail, so a watcher joins the live ones exactly where the tail is and
 * nothing is sent twice or skipped.
 */
export class FeedWatchers {
  private readonly catchingUp = new Set<WebSocket>();
  /** Attachments already read, so a fan-out does not re-validate every socket's. */
  private readonly known = new WeakMap<WebSocket, Watcher>();

  constructor(private readonly ctx: DurableObjectState) {}

  /** Whether any socket is open. */
  get any(): boolean {
    return this.ctx.getWebSockets().length > 0;
  }

  /** Whether some watcher still has history to read. */
  get behind(): boolean {
    return this.catchingUp.size > 0;
  }

  /**
   * A new watcher, which first reads the events after `cursor`. `started`: it asked for
   * "now", and is told first where that is (the one message only such sockets get, so
   * clients that never ask for it see the protocol they know).
   */
  accept(
    ws: WebSocket,
    cursor: FeedCheckpoint,
    streamTypes: readonly string[] | undefined,
    started = false,
  ): void {
    this.ctx.acceptWebSocket(ws);
    const attachment = {
      cursor: encodeCheckpoint(cursor),
      caughtUp: false,
      ...(streamTypes === undefined ? {} : { streamTypes: [...streamTypes] }),
    };
    this.remember(ws, attachment);
    if (started) send(ws, { type: "started", checkpoint: attachment.cursor });
    this.catchingUp.add(ws);
  }

  /** The actor lost its memory (eviction, hibernation): every watcher reads on from its own cursor. */
  resumeAll(): void {
    for (const ws of this.ctx.getWebSockets()) this.catchingUp.add(ws);
  }

  /** A message from a watcher: only pings are taken (the runtime answers the exact ping frame itself). */
  answer(ws: WebSocket, message: string | ArrayBuffer): void {
    answerClientFrame(ws, message, "feed");
  }

  /** The client closed: finish the closing handshake. */
  closed(ws: WebSocket, code: number, reason: string): void {
    this.catchingUp.delete(ws);
    // 1005 and 1006 say no code was given; they may not be sent back.
    closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  /** The socket failed; the runtime has closed it. */
  failed(ws: WebSocket): void {
    this.catchingUp.delete(ws);
  }

  /**
   * New events of the feed, in feed order, all after the tail every live watcher has
   * reached: each live watcher gets those of its stream types that are after its cursor.
   */
  publish(events: readonly FeedEvent[]): void {
    const entries = events.map((event) => ({
      event,
      at: decodeCheckpoint(event.checkpoint) ?? FEED_START,
      frame: JSON.stringify({ type: "event", event } satisfies FeedWatchServerMessage),
    }));
    if (entries.length === 0) return;
    for (const ws of this.ctx.getWebSockets()) {
      if (this.catchingUp.has(ws)) continue;
      const watcher = this.watcher(ws);
      if (watcher === undefined) continue;
      const types = watcher.attachment.streamTypes;
      let last: string | undefined;
      for (const { event, at, frame } of entries) {
        if (types !== undefined && !types.includes(event.stream_type)) continue;
        if (compareCheckpoints(at, watcher.cursor) <= 0) continue;
        if (!trySend(ws, frame)) break;
        last = event.checkpoint;
      }
      if (last !== undefined) this.moveCursor(ws, watcher, last);
    }
  }

  /** One page of history, read up to `tail`, for each watcher still reading it. */
  async catchUp(read: ReadFeedPage, tail: FeedCheckpoint): Promise<void> {
    for (const ws of [...this.catchingUp]) await this.catchUpOne(ws, read, tail);
  }

  /** Ends every watcher: the feed cannot be read now. Each is told where to resume. */
  closeAll(code: string, message: string): void {
    for (const ws of this.ctx.getWebSockets()) {
      const cursor = this.watcher(ws)?.attachment.cursor;
      send(ws, { type: "error", code, message });
      closeQuietly(
        ws,
        1011,
        cursor === undefined ? "unavailable" : `unavailable; reconnect with after=${cursor}`,
      );
    }
    this.catchingUp.clear();
  }

  private async catchUpOne(ws: WebSocket, read: ReadFeedPage, tail: FeedCheckpoint): Promise<void> {
    const watcher = this.watcher(ws);
    if (watcher === undefined) {
      this.catchingUp.delete(ws);
      return;
    }
    const page = await read(watcher.cursor, FEED_CATCH_UP_PAGE, watcher.attachment.streamTypes, tail);
    if (!this.catchingUp.has(ws)) return; // it left while the page was read
    let last: FeedEvent | undefined;
    for (const event of page) {
      if (!trySend(ws, JSON.stringify({ type: "event", event } satisfies FeedWatchServerMessage))) {
        // The watcher left mid-page: nothing is wrong with the feed.
        this.catchingUp.delete(ws);
        return;
      }
      last = event;
    }
    if (last !== undefined) this.moveCursor(ws, watcher, last.checkpoint);
    if (page.length >= FEED_CATCH_UP_PAGE) return;
    // Everything of its types up to the tail has been sent: it is live from here.
    this.catchingUp.delete(ws);
    const current = this.watcher(ws) ?? watcher;
    if (compareCheckpoints(current.cursor, tail) < 0) this.moveCursor(ws, current, encodeCheckpoint(tail));
    const live = this.watcher(ws) ?? current;
    if (!live.attachment.caughtUp) {
      this.remember(ws, { ...live.attachment, caughtUp: true });
      send(ws, { type: "caught_up", checkpoint: live.attachment.cursor });
    }
  }

  private moveCursor(ws: WebSocket, watcher: Watcher, cursor: string): void {
    this.remember(ws, { ...watcher.attachment, cursor });
  }

  /** A watcher's attachment: from memory, or (after hibernation threw memory away) validated from the socket once. */
  private watcher(ws: WebSocket): Watcher | undefined {
    const known = this.known.get(ws);
    if (known) return known;
    const parsed = FeedWatcherAttachment.safeParse(ws.deserializeAttachment());
    const cursor = parsed.success ? decodeCheckpoint(parsed.data.cursor) : undefined;
    if (!parsed.success || cursor === undefined) return undefined;
    const watcher = { attachment: parsed.data, cursor };
    this.known.set(ws, watcher);
    return watcher;
  }

  /** Remembers a watcher's attachment, in memory and on the socket (which survives hibernation). */
  private remember(ws: WebSocket, attachment: FeedWatcherAttachment): void {
    const cursor = decodeCheckpoint(attachment.cursor);
    if (cursor === undefined) throw new Error(`not a checkpoint: ${attachment.cursor}`);
    this.known.set(ws, { attachment, cursor });
    ws.serializeAttachment(attachment);
  }
}

function send(ws: WebSocket, message: FeedWatchServerMessage): void {
  trySend(ws, JSON.stringify(message));
}
