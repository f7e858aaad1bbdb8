import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";

// A lean HTTP/1.1 client for the load generator: node:http with keep-alive, so that
// each concurrent writer keeps one connection and the client spends as little CPU per
// request as it can (the machine is shared with workerd and the database).

const newAgent = () =>
  new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 1024 });
let agent = newAgent();
const REQUEST_TIMEOUT_MS = 30_000;

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** performance.now() when the request was handed to the socket layer. */
  sentAt: number;
  /** performance.now() when the whole response body had arrived. */
  receivedAt: number;
}

export function httpRequest(
  method: "GET" | "POST",
  url: URL,
  headers: Record<string, string>,
  body?: string,
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(body);
    const sentAt = performance.now();
    const req = request(
      url,
      {
        method,
        agent,
        headers: payload === undefined ? headers : { ...headers, "content-length": String(payload.length) },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            sentAt,
            receivedAt: performance.now(),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`${method} ${url.pathname} took over ${REQUEST_TIMEOUT_MS} ms`)),
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** Closes the keep-alive sockets (between scenarios, and around a Worker restart). */
export function closeConnections(): void {
  agent.destroy();
  agent = newAgent();
}

/** The durations of a Server-Timing header, by name: "queue;dur=0, db;dur=3" → {queue: 0, db: 3}. */
export function serverTiming(header: string | string[] | undefined): Record<string, number> {
  const text = Array.isArray(header) ? header.join(",") : (header ?? "");
  const timings: Record<string, number> = {};
  for (const part of text.split(",")) {
    const match = /^\s*([A-Za-z0-9_-]+)\s*;\s*dur=([0-9.]+)/.exec(part);
    if (match?.[1] !== undefined && match[2] !== undefined) timings[match[1]] = Number(match[2]);
  }
  return timings;
}
