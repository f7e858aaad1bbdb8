import { PONG_FRAME, WatchClientMessage } from "./watch-messages";

// What every read-only watch socket does the same way, a stream's (watchers.ts) and the
// feed's (src/feed/feed-watchers.ts): sending without failing on a socket that went
// away, closing quietly, answering the client's frames, and reading the caller's
// stream-type limit that the Worker hands over in a header.

/** Sends a frame; false when the socket has gone away (webSocketClose cleans up). */
export function trySend(ws: WebSocket, frame: string): boolean {
  try {
    ws.send(frame);
    return true;
  } catch {
    return false;
  }
}

export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}

/** A pong for a ping (which the runtime usually answers itself); anything else is refused. */
export function answerClientFrame(
  ws: WebSocket,
  message: string | ArrayBuffer,
  reads: "stream" | "feed",
): void {
  let parsed: unknown;
  try {
    parsed = typeof message === "string" ? JSON.parse(message) : undefined;
  } catch {
    parsed = undefined;
  }
  if (WatchClientMessage.safeParse(parsed).success) {
    trySend(ws, PONG_FRAME);
    return;
  }
  trySend(
    ws,
    JSON.stringify({
      type: "error",
      code: "unsupported_message",
      message: `This socket only reads the ${reads}; the one message it takes is {"type":"ping"}.`,
    }),
  );
}

/** The stream types a watcher may see, from the Worker's header: absent, no limit; malformed, none. */
export function parseStreamTypesHeader(header: string | null): string[] | undefined {
  if (header === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(header);
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return [];
  }
}
