import type WebSocket from "ws";
import { WatchServerMessage } from "../../src/actor/watch-messages";
import { openRecordingSocket, type SocketOptions } from "./recording-socket";

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
  options: SocketOptions = {},
): Promise<Watcher> {
  const versions: number[] = [];
  const recording = await openRecordingSocket(
    new URL(`/streams/${streamId}/watch?from=${from}`, baseUrl),
    (raw) => WatchServerMessage.parse(raw),
    (message) => {
      if (message.type === "event") versions.push(message.event.version);
    },
    options,
  );
  return {
    versions,
    messages: recording.messages,
    socket: recording.socket,
    waitFor: (version, timeoutMs = 20_000) =>
      recording.waitUntil(
        () => versions.includes(version),
        timeoutMs,
        () => `version ${version} did not arrive within ${timeoutMs} ms (last: ${versions.at(-1)})`,
      ),
    close: recording.close,
  };
}
