import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FeedEvent } from "../../src/feed/feed-event";
import { signWebhook } from "./webhook-signing";

/** One POST the receiver got, and what it answered. */
export interface ReceivedDelivery {
  webhookId: string;
  timestamp: number;
  /** Whether webhook-signature holds a v1 entry made with the receiver's secret. */
  signed: boolean;
  subscription: string;
  events: FeedEvent[];
  status: number;
}

/** What to answer a delivery: a status and, optionally, a Retry-After header. */
export type Answer = (delivery: Omit<ReceivedDelivery, "status">) => { status: number; retryAfter?: string };

/**
 * A real HTTP receiver in Node for subscription deliveries: it checks each delivery's
 * Standard Webhooks signature, records it with the status it answered, and can go away
 * (connections refused) and come back on the same port.
 */
export class WebhookReceiver {
  readonly deliveries: ReceivedDelivery[] = [];
  secret = "";
  answer: Answer = () => ({ status: 204 });
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private port = 0;
  private readonly waiters = new Set<() => void>();

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  /** Every event taken (answered 2xx), in the order taken. */
  get taken(): FeedEvent[] {
    return this.deliveries.filter((d) => d.status >= 200 && d.status < 300).flatMap((d) => d.events);
  }

  async start(): Promise<this> {
    const server = createServer((request, response) => void this.handle(request, response));
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address !== null && typeof address === "object") this.port = address.port;
    this.server = server;
    return this;
  }

  /** Goes away: the port refuses connections until start() again. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Resolves once `done` holds for the deliveries (rejects after `timeoutMs`). */
  waitUntil(done: (receiver: this) => boolean, timeoutMs = 60_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!done(this)) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `the receiver did not get there within ${timeoutMs} ms (${this.deliveries.length} deliveries)`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const webhookId = String(request.headers["webhook-id"] ?? "");
    const timestamp = Number(request.headers["webhook-timestamp"] ?? 0);
    const expected = this.secret === "" ? "" : await signWebhook(this.secret, webhookId, timestamp, body);
    const signed = String(request.headers["webhook-signature"] ?? "")
      .split(" ")
      .includes(expected);
    const parsed = JSON.parse(body) as { subscription: string; events: FeedEvent[] };
    const delivery = {
      webhookId,
      timestamp,
      signed,
      subscription: parsed.subscription,
      events: parsed.events,
    };
    const { status, retryAfter } = this.answer(delivery);
    this.deliveries.push({ ...delivery, status });
    response.writeHead(status, retryAfter === undefined ? {} : { "retry-after": retryAfter });
    response.end();
    for (const wake of [...this.waiters]) wake();
  }
}
