import type WebSocket from "ws";
import type { FeedEvent } from "../../src/feed/feed-event";
import { FeedWatchServerMessage } from "../../src/feed/feed-messages";
import { openRecordingSocket, type SocketOptions } from "./recording-socket";

/** A real WebSocket client following the global feed (GET /watch), recording what it receives. */
export interface FeedWatcher {
  readonly events: FeedEvent[];
  readonly messages: FeedWatchServerMessage[];
  /** Resolves once `done(events)` holds (rejects after `timeoutMs`). */
  waitUntil(done: (events: readonly FeedEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
  readonly socket: WebSocket;
}

export async function watchFeed(
  baseUrl: URL,
  query: { after?: string; stream_type?: string } = {},
  options: SocketOptions = {},
): Promise<FeedWatcher> {
  const url = new URL("/watch", baseUrl);
  if (query.after !== undefined) url.searchParams.set("after", query.after);
  if (query.stream_type !== undefined) url.searchParams.set("stream_type", query.stream_type);
  const events: FeedEvent[] = [];
  const recording = await openRecordingSocket(
    url,
    (raw) => FeedWatchServerMessage.parse(raw),
    (message) => {
      if (message.type === "event") events.push(message.event);
    },
    options,
  );
  return {
    events,
    messages: recording.messages,
    socket: recording.socket,
    waitUntil: (done, timeoutMs = 30_000) =>
      recording.waitUntil(
        () => done(events),
        timeoutMs,
        () => `the feed watcher did not get there within ${timeoutMs} ms (${events.length} events)`,
      ),
    close: recording.close,
  };
}
