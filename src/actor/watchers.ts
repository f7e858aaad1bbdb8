import type { IdentifiedEvent } from "../events/append-rules";
import type { AppendResult } from "../events/store";
import { StoredEvent } from "../events/types";
import type { ActorResult, StreamAccess } from "./actor-protocol";
import { forbiddenType } from "./stream-access";
import { PONG_FRAME, WatchClientMessage, WatcherAttachment, type WatchServerMessage } from "./watch-messages";

/** Events one catch-up step sends before the writer loop serves appends again. */
const CATCH_UP_PAGE = 500;

/**
 * What a catch-up reads: the stream's version and up to `limit` events after `cursor`;
 * a failure when they cannot be read, `forbidden` when the token does not cover the stream.
 */
export type ReadHistory = (
  cursor: number,
  limit: number,
  access: StreamAccess,
) => Promise<ActorResult<{ version: number; events: StoredEvent[] }>>;

/**
 * The stream's watchers: their sockets (accepted through the Hibernation API, so an idle
 * watcher costs nothing), each socket's attachment (its cursor, whether it was told it is
 * live, its token's limits), and which of them are still reading history. A socket lives
 * as long as its client and survives hibernation; this object and its caches do not, and
 * are rebuilt from the sockets.
 */
export class Watchers {
  /** Watchers still reading history; they join the live fan-out once they reach the head. */
  private readonly catchingUp = new Set<WebSocket>();
  /** Attachments already read, so a commit's fan-out does not re-validate every socket's. */
  private readonly attachments = new WeakMap<WebSocket, WatcherAttachment>();

  constructor(private readonly ctx: DurableObjectState) {}

  /** Whether some watcher still has history to read. */
  get behind(): boolean {
    return this.catchingUp.size > 0;
  }

  /** A new watcher, which first reads the events after `cursor`. */
  accept(ws: WebSocket, cursor: number, allowedStreamTypes: string[] | undefined): void {
    this.ctx.acceptWebSocket(ws);
    this.setAttachment(ws, {
      cursor,
      caughtUp: false,
      ...(allowedStreamTypes === undefined ? {} : { allowedStreamTypes }),
    });
    this.catchingUp.add(ws);
  }

  /** A message from a watcher: only pings are taken (the runtime answers the exact ping frame itself). */
  answer(ws: WebSocket, message: string | ArrayBuffer): void {
    let parsed: unknown;
    try {
      parsed = typeof message === "string" ? JSON.parse(message) : undefined;
    } catch {
      parsed = undefined;
    }
    if (WatchClientMessage.safeParse(parsed).success) {
      ws.send(PONG_FRAME);
      return;
    }
    send(ws, {
      type: "error",
      code: "unsupported_message",
      message: 'This socket only reads the stream; the one message it takes is {"type":"ping"}.',
    });
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

  /** One page of history for each watcher still reading it. */
  async catchUp(read: ReadHistory): Promise<void> {
    for (const ws of [...this.catchingUp]) await this.catchUpOne(ws, read);
  }

  /**
   * Pushes a commit (`events` as the actor wrote them, `commit` as the store answered)
   * to every live watcher that is exactly where it begins. If the events cannot be
   * rebuilt as reads return them, every watcher reads them from the log instead.
   */
  publishCommit(commit: AppendResult, events: readonly IdentifiedEvent[]): void {
    const committed: StoredEvent[] = [];
    for (const [index, item] of events.entries()) {
      const parsed = StoredEvent.safeParse({
        event_id: item.event_id,
        stream_id: commit.streamId,
        stream_type: commit.streamType,
        version: commit.versions[index],
        event: item.event,
        metadata: item.metadata ?? {},
        occurred_at: commit.occurredAt,
        global_position: commit.globalPositions?.[index],
      });
      if (!parsed.success) {
        for (const ws of this.ctx.getWebSockets()) this.catchingUp.add(ws);
        return;
      }
      committed.push(parsed.data);
    }
    this.publish(committed);
  }

  /** Sends the watcher its next page of history, or tells it that it is live. */
  private async catchUpOne(ws: WebSocket, read: ReadHistory): Promise<void> {
    const attachment = this.attachmentOf(ws);
    if (attachment === undefined) {
      this.catchingUp.delete(ws);
      return;
    }
    const { allowedStreamTypes } = attachment;
    const page = await read(
      attachment.cursor,
      CATCH_UP_PAGE,
      allowedStreamTypes === undefined ? {} : { allowedStreamTypes },
    );
    if (!page.ok) {
      this.catchingUp.delete(ws);
      if (page.code === "forbidden") refuseWatcher(ws, page.message);
      else closeUnavailable(ws, page.message, attachment.cursor);
      return;
    }
    let cursor = attachment.cursor;
    for (const event of page.events) {
      if (event.version !== cursor + 1) break;
      if (!trySend(ws, eventFrame(event))) {
        // The watcher left mid-page: nothing is wrong with the database.
        this.catchingUp.delete(ws);
        return;
      }
      cursor = event.version;
    }
    const live = cursor >= page.version;
    this.setAttachment(ws, { ...attachment, cursor, caughtUp: attachment.caughtUp || live });
    if (live) {
      this.catchingUp.delete(ws);
      if (!attachment.caughtUp) send(ws, { type: "caught_up", version: page.version });
    }
  }

  private publish(events: StoredEvent[]): void {
    const first = events[0];
    const last = events[events.length - 1]?.version;
    if (first === undefined || last === undefined) return;
    const frames = events.map(eventFrame);
    for (const ws of this.ctx.getWebSockets()) {
      if (this.catchingUp.has(ws)) continue;
      const attachment = this.attachmentOf(ws);
      if (attachment === undefined || attachment.cursor >= last) continue;
      const refused = forbiddenType(attachment.allowedStreamTypes, first.stream_type);
      if (refused) {
        refuseWatcher(ws, refused.message);
        continue;
      }
      if (attachment.cursor < first.version - 1) {
        // It missed something (another writer, or a reload): let it read from the log.
        this.catchingUp.add(ws);
        continue;
      }
      try {
        for (const [index, event] of events.entries()) {
          if (event.version > attachment.cursor) ws.send(frames[index] ?? "");
        }
        this.setAttachment(ws, { ...attachment, cursor: last });
      } catch {
        // The socket went away; webSocketClose cleans up.
      }
    }
  }

  /** A watcher's attachment: from memory, or (after hibernation threw memory away) validated from the socket once. */
  private attachmentOf(ws: WebSocket): WatcherAttachment | undefined {
    const known = this.attachments.get(ws);
    if (known) return known;
    const parsed = WatcherAttachment.safeParse(ws.deserializeAttachment());
    if (!parsed.success) return undefined;
    this.attachments.set(ws, parsed.data);
    return parsed.data;
  }

  /** Remembers a watcher's attachment, in memory and on the socket (which survives hibernation). */
  private setAttachment(ws: WebSocket, attachment: WatcherAttachment): void {
    this.attachments.set(ws, attachment);
    ws.serializeAttachment(attachment);
  }
}

function eventFrame(event: StoredEvent): string {
  return JSON.stringify({ type: "event", event } satisfies WatchServerMessage);
}

/** Sends a frame; false when the socket has gone away (webSocketClose cleans up). */
function trySend(ws: WebSocket, frame: string): boolean {
  try {
    ws.send(frame);
    return true;
  } catch {
    return false;
  }
}

function send(ws: WebSocket, message: WatchServerMessage): void {
  trySend(ws, JSON.stringify(message));
}

/** Ends a watcher whose token does not cover this stream. */
function refuseWatcher(ws: WebSocket, message: string): void {
  send(ws, { type: "error", code: "forbidden", message });
  closeQuietly(ws, 1008, "forbidden: the token does not cover this stream's type");
}

/** Ends a watcher that cannot be served now, telling it where to resume. */
function closeUnavailable(ws: WebSocket, message: string, cursor: number): void {
  send(ws, { type: "error", code: "unavailable", message });
  closeQuietly(ws, 1011, `database unavailable; reconnect with from=${cursor}`);
}

function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}
