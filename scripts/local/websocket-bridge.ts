import { createConnection, type Socket } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";

// The small WebSocket-to-TCP bridge that lets @neondatabase/serverless (which only
// speaks PostgreSQL over WebSocket) reach an ordinary PostgreSQL. Each WebSocket is
// piped, byte for byte, to one TCP connection to the configured server. The
// `address` the driver asks for is ignored: the bridge only ever reaches its
// own target, so it can never be used as an open proxy.

export interface WebSocketBridgeOptions {
  target: { host: string; port: number };
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

export interface WebSocketBridge {
  /** The value for DATABASE_WS_PROXY. */
  readonly proxyUrl: string;
  readonly port: number;
  openConnections(): number;
  /** Cuts every open connection (a network failure, as the database sees it) but keeps listening. */
  dropConnections(): void;
  close(): Promise<void>;
}

export async function startWebSocketBridge(options: WebSocketBridgeOptions): Promise<WebSocketBridge> {
  const host = options.host ?? "127.0.0.1";
  const server = new WebSocketServer({ host, port: options.port ?? 0 });
  const pairs = new Set<{ ws: WebSocket; tcp: Socket }>();

  server.on("connection", (ws) => {
    const tcp = createConnection(options.target);
    const pair = { ws, tcp };
    pairs.add(pair);
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
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("bridge did not bind a TCP port");

  return {
    proxyUrl: `ws://${host}:${address.port}/v1`,
    port: address.port,
    openConnections: () => pairs.size,
    dropConnections: () => {
      for (const pair of [...pairs]) {
        pair.tcp.destroy();
        pair.ws.terminate();
      }
    },
    close: async () => {
      for (const pair of [...pairs]) {
        pair.tcp.destroy();
        pair.ws.terminate();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
