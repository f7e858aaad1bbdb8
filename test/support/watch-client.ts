import WebSocket from "ws";
import { WatchServerMessage } from "../../src/actor/watch-messages";
import { adminAuthorization } from "./test-tokens";

/** A real WebSocket client following one stream, recording what it receives. */
export interface Watcher {
  /** Versions received, in arrival order. */
  readonly versions: number[];
  readonly messages: WatchServerMessage[];
  /** Resolves once `version` has arrived (rejects after `timeoutMs`). */
  waitFor(version: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
  readonly socket: WebSocket;
}

export async function watch(
  baseUrl: URL,
  streamId: string,
  from = 0,
  options: { protocols?: string[]; headers?: Record<string, string> } = {},
): Promise<Watcher> {
  const url = new URL(`/streams/${streamId}/watch?from=${from}`, baseUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, options.protocols ?? [], {
    headers: options.headers ?? (options.protocols ? {} : adminAuthorization),
  });
  const versions: number[] = [];
  const messages: WatchServerMessage[] = [];
  const waiters = new Set<() => void>();
  socket.on("message", (data) => {
    const message = WatchServerMessage.parse(JSON.parse(String(data)));
    messages.push(message);
    if (message.type === "event") versions.push(message.event.version);
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
    versions,
    messages,
    socket,
    waitFor: (version, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (versions.includes(version)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`version ${version} did not arrive within ${timeoutMs} ms (last: ${versions.at(-1)})`),
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
