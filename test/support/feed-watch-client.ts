import WebSocket from "ws";
import type { FeedEvent } from "../../src/feed/feed-event";
import { FeedWatchServerMessage } from "../../src/feed/feed-messages";
import { adminAuthorization } from "./test-tokens";

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
  options: { protocols?: string[]; headers?: Record<string, string> } = {},
): Promise<FeedWatcher> {
  const url = new URL("/watch", baseUrl);
  if (query.after !== undefined) url.searchParams.set("after", query.after);
  if (query.stream_type !== undefined) url.searchParams.set("stream_type", query.stream_type);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, options.protocols ?? [], {
    headers: options.headers ?? (options.protocols ? {} : adminAuthorization),
  });
  const events: FeedEvent[] = [];
  const messages: FeedWatchServerMessage[] = [];
  const waiters = new Set<() => void>();
  socket.on("message", (data) => {
    const message = FeedWatchServerMessage.parse(JSON.parse(String(data)));
    messages.push(message);
    if (message.type === "event") events.push(message.event);
    for (const wake of [...waiters]) wake();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
    socket.once("unexpected-response", (_request, response) =>
      reject(new Error(`watch refused with HTTP ${response.statusCode}`)),
    );
  });
  return {
    events,
    messages,
    socket,
    waitUntil: (done, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (done(events)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`the feed watcher did not get there within ${timeoutMs} ms (${events.length} events)`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once("close", () => resolve());
        socket.close(1000);
      }),
  };
}
