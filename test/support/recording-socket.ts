import WebSocket from "ws";
import { adminAuthorization } from "./test-tokens";

// A real WebSocket client (the `ws` package) that parses and records every message it
// receives: what the stream watcher (watch-client.ts) and the feed watcher
// (feed-watch-client.ts) of the tests are made of.

export interface SocketOptions {
  /** Subprotocols to offer; without them the admin token goes in Authorization. */
  protocols?: string[];
  headers?: Record<string, string>;
}

export interface RecordingSocket<M> {
  readonly messages: M[];
  readonly socket: WebSocket;
  /** Resolves once `done()` holds, now or after a later message; rejects with `why()` after `timeoutMs`. */
  waitUntil(done: () => boolean, timeoutMs: number, why: () => string): Promise<void>;
  close(): Promise<void>;
}

/** Opens `url` (http(s) or ws(s)), parsing each message with `parse` and handing it to `received` too. */
export async function openRecordingSocket<M>(
  url: URL,
  parse: (raw: unknown) => M,
  received: (message: M) => void,
  options: SocketOptions = {},
): Promise<RecordingSocket<M>> {
  const target = new URL(url);
  target.protocol = target.protocol === "https:" || target.protocol === "wss:" ? "wss:" : "ws:";
  const socket = new WebSocket(target, options.protocols ?? [], {
    headers: options.headers ?? (options.protocols ? {} : adminAuthorization),
  });
  const messages: M[] = [];
  const waiters = new Set<() => void>();
  socket.on("message", (data) => {
    const message = parse(JSON.parse(String(data)));
    messages.push(message);
    received(message);
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
    messages,
    socket,
    waitUntil: (done, timeoutMs, why) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (done()) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(why()));
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
