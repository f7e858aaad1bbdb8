import { workerConfig } from "../config/worker-config";
import type { IdentifiedEvent } from "../events/append-rules";
import type { AppendResult } from "../events/store";
import { StoredEvent } from "../events/types";
import type { ActorResult, StreamAccess } from "./actor-protocol";
import { forbiddenType } from "./stream-access";
import { TOO_MANY_WATCHERS, WatcherAttachment, type WatchServerMessage } from "./watch-messages";
import { answerClientFrame, closeQuietly, trySend } from "./watch-socket";
import type { WatcherLease, WatcherQuota } from "./watcher-quota";

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
 * are rebuilt from the sockets. Watchers are capped (issue 10, row 3): per stream here,
 * per token across streams by the token's WatcherQuota, whose lease each socket holds.
 */
export class Watchers {
  /** Watchers still reading history; they join the live fan-out once they reach the head. */
  private readonly catchingUp = new Set<WebSocket>();
  /** Attachments already read, so a commit's fan-out does not re-validate every socket's. */
  private readonly attachments = new WeakMap<WebSocket, WatcherAttachment>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
  ) {}

  /** Whether some watcher still has history to read. */
  get behind(): boolean {
    return this.catchingUp.size > 0;
  }

  /**
   * A new watcher of `streamId`, which first reads the events after `cursor`, if the caps
   * allow it: false when the socket was closed at once with TOO_MANY_WATCHERS instead.
   */
  async admit(
    ws: WebSocket,
    streamId: string,
    watcher: { cursor: number; allowedStreamTypes: string[] | undefined; tokenId: string | undefined },
  ): Promise<boolean> {
    const { watchersPerStream, watchersPerToken } = workerConfig(this.env);
    const open = this.ctx.getWebSockets().length;
    if (open >= watchersPerStream) {
      refuseAtCapacity(ws, `This stream has ${open} watchers, its most (WATCHERS_PER_STREAM).`);
      return false;
    }
    let lease: WatcherLease | undefined;
    if (watcher.tokenId !== undefined) {
      lease = { tokenId: watcher.tokenId, watcherId: crypto.randomUUID() };
      const granted = await this.quota(lease.tokenId).acquire(lease.watcherId, streamId, watchersPerToken);
      if (!granted.ok) {
        refuseAtCapacity(
          ws,
          `Token ${lease.tokenId} has ${granted.held} watchers open, its most (WATCHERS_PER_TOKEN); close one first.`,
        );
        return false;
      }
    }
    this.ctx.acceptWebSocket(ws);
    this.setAttachment(ws, {
      cursor: watcher.cursor,
      caughtUp: false,
      ...(watcher.allowedStreamTypes === undefined ? {} : { allowedStreamTypes: watcher.allowedStreamTypes }),
      ...(lease === undefined ? {} : { lease }),
    });
    this.catchingUp.add(ws);
    return true;
  }

  /** The leases of the watchers open now (their token's WatcherQuota asks, to drop lost ones). */
  leases(): string[] {
    return this.ctx
      .getWebSockets()
      .map((ws) => this.attachmentOf(ws)?.lease?.watcherId)
      .filter((id) => id !== undefined);
  }

  /** A message from a watcher: only pings are taken (the runtime answers the exact ping frame itself). */
  answer(ws: WebSocket, message: string | ArrayBuffer): void {
    answerClientFrame(ws, message, "stream");
  }

  /** The client closed: finish the closing handshake. */
  closed(ws: WebSocket, code: number, reason: string): void {
    this.catchingUp.delete(ws);
    this.release(ws);
    // 1005 and 1006 say no code was given; they may not be sent back.
    closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  /** The socket failed; the runtime has closed it. */
  failed(ws: WebSocket): void {
    this.catchingUp.delete(ws);
    this.release(ws);
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
      this.release(ws);
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
        this.release(ws);
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

  /** Gives the watcher's lease back to its token's quota (once the socket is done with). */
  private release(ws: WebSocket): void {
    const lease = this.attachmentOf(ws)?.lease;
    if (lease === undefined) return;
    this.ctx.waitUntil(
      this.quota(lease.tokenId)
        .release(lease.watcherId)
        .catch(() => undefined),
    );
  }

  private quota(tokenId: string): Pick<WatcherQuota, "acquire" | "release"> {
    const namespace = this.env.WATCHER_QUOTA;
    // The stub's RPC methods are exactly these; the runtime's types wrap them in Rpc.* helpers.
    return namespace.get(namespace.idFromName(tokenId)) as unknown as Pick<
      WatcherQuota,
      "acquire" | "release"
    >;
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

function send(ws: WebSocket, message: WatchServerMessage): void {
  trySend(ws, JSON.stringify(message));
}

/** Ends a watcher whose token does not cover this stream. */
function refuseWatcher(ws: WebSocket, message: string): void {
  send(ws, { type: "error", code: "forbidden", message });
  closeQuietly(ws, 1008, "forbidden: the token does not cover this stream's type");
}

/**
 * Refuses a watcher over a cap: the socket is accepted only to say why and close with
 * TOO_MANY_WATCHERS (a browser's WebSocket cannot read an HTTP refusal).
 */
function refuseAtCapacity(ws: WebSocket, message: string): void {
  ws.accept();
  send(ws, { type: "error", code: "too_many_watchers", message });
  closeQuietly(ws, TOO_MANY_WATCHERS, "too many watchers; close one before reconnecting");
}

/** Ends a watcher that cannot be served now, telling it where to resume. */
function closeUnavailable(ws: WebSocket, message: string, cursor: number): void {
  send(ws, { type: "error", code: "unavailable", message });
  closeQuietly(ws, 1011, `database unavailable; reconnect with from=${cursor}`);
}
