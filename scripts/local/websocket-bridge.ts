import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import { createConnection, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { localToolRefusal } from "./local-tool-request";

// The small WebSocket-to-TCP bridge that lets @neondatabase/serverless (which only
// speaks PostgreSQL over WebSocket) reach an ordinary PostgreSQL. Each WebSocket is
// piped, byte for byte, to one TCP connection to the configured server. The
// `address` the driver asks for is ignored: the bridge only ever reaches its
// own target, so it can never be used as an open proxy.
//
// Whoever connects speaks SQL as the database's user, so the bridge serves only its
// own tools (localToolRefusal): the secret path of this run (`/v1/<random>`, in
// DATABASE_WS_PROXY and nowhere else), no browser, this machine as the Host.

export interface WebSocketBridgeOptions {
  target: { host: string; port: number };
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /**
   * The secret path to serve. A bridge restarted on the port of an earlier one passes
   * that one's `path`, so the DATABASE_WS_PROXY already handed out stays valid; a new
   * random path when absent.
   */
  path?: string;
}

export interface WebSocketBridge {
  /** The value for DATABASE_WS_PROXY: `ws://host:port/v1/<secret>`. */
  readonly proxyUrl: string;
  readonly port: number;
  /** The secret path (`/v1/<secret>`). */
  readonly path: string;
  openConnections(): number;
  /** WebSockets accepted since the bridge started: one per database session opened through it. */
  connectionsAccepted(): number;
  /** The most connections open at once since the last call (then counting starts again from those open now). */
  peakConnections(): number;
  /** Upgrades refused (wrong path, a browser's Origin, a foreign Host) since the bridge started. */
  upgradesRefused(): number;
  /** Cuts every open connection (a network failure, as the database sees it) but keeps listening. */
  dropConnections(): void;
  close(): Promise<void>;
}

/** A fresh secret path: 24 random bytes, base64url. */
export function newBridgePath(): string {
  return `/v1/${randomBytes(24).toString("base64url")}`;
}

function refuse(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

export async function startWebSocketBridge(options: WebSocketBridgeOptions): Promise<WebSocketBridge> {
  const host = options.host ?? "127.0.0.1";
  const path = options.path ?? newBridgePath();
  const server = createServer((_request, response) => {
    // Anything but a WebSocket upgrade: nothing is served here.
    response.writeHead(404, { connection: "close" }).end();
  });
  const sockets = new WebSocketServer({ noServer: true });
  const pairs = new Set<{ ws: WebSocket; tcp: Socket }>();
  let accepted = 0;
  let refused = 0;
  let peak = 0;

  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const denied = localToolRefusal(request, path, host);
    if (denied !== undefined) {
      refused++;
      refuse(socket, denied.status, denied.reason);
      return;
    }
    sockets.handleUpgrade(request, socket, head, (ws) => sockets.emit("connection", ws, request));
  });

  sockets.on("connection", (ws: WebSocket) => {
    accepted++;
    const tcp = createConnection(options.target);
    const pair = { ws, tcp };
    pairs.add(pair);
    peak = Math.max(peak, pairs.size);
    tcp.setNoDelay(true);
    const shutdown = () => {
      pairs.delete(pair);
      tcp.destroy();
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.terminate();
    };
    ws.on("message", (data, isBinary) => {
      const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      tcp.write(isBinary ? chunk : Buffer.from(chunk.toString()));
    });
    tcp.on("data", (chunk) => {
      if (ws.readyState === ws.OPEN) ws.send(chunk, { binary: true });
    });
    ws.on("close", shutdown);
    ws.on("error", shutdown);
    tcp.on("close", shutdown);
    tcp.on("error", shutdown);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
    server.listen(options.port ?? 0, host);
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("bridge did not bind a TCP port");

  const cutAll = () => {
    for (const pair of [...pairs]) {
      pair.tcp.destroy();
      pair.ws.terminate();
    }
  };
  return {
    proxyUrl: `ws://${host}:${address.port}${path}`,
    port: address.port,
    path,
    openConnections: () => pairs.size,
    connectionsAccepted: () => accepted,
    peakConnections: () => {
      const seen = peak;
      peak = pairs.size;
      return seen;
    },
    upgradesRefused: () => refused,
    dropConnections: cutAll,
    close: async () => {
      cutAll();
      sockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
