import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { benchAuthorization } from "../lib/auth";
import { runClosedLoop } from "../lib/closed-loop";
import { httpRequest } from "../lib/http-client";
import type { BenchPlan } from "../lib/plan";
import type { Stack } from "../lib/stack";
import { type Summary, summarize } from "../lib/stats";
import {
  appendBody,
  BENCH_STREAM_TYPE,
  contextEvent,
  createStream,
  postAppend,
} from "../lib/workflow-events";

// 8. The global feed under load: W writers, one stream each, append one event per
// request (closed loop) while a /watch client follows the feed and a subscription
// delivers it to an HTTP receiver in this process. For every acknowledged event:
//   after commit = arrival − occurred_at, the database's now() of the writing statement
//                  (its transaction's start, so a commit is at most that statement's
//                  duration later: this slightly over-states the delay);
//   after ack    = arrival − the writer's receipt of its 201 (negative when it came first).
// Clocks: wall time of this machine on both sides (PostgreSQL runs here). Afterwards the
// whole window is read back with GET /events (pages of 1,000): the feed's read throughput.

export interface FeedDeliveryResult {
  writers: number;
  windowSeconds: number;
  appended: number;
  appendsPerSecond: number;
  watch: Arrivals;
  subscription: Arrivals & { batchSize: number; deliveries: number };
  feedRead: { events: number; seconds: number; eventsPerSecond: number; pages: number };
  failures: string[];
}

interface Arrivals {
  received: number;
  missing: number;
  duplicates: number;
  afterCommit: Summary;
  afterAck: Summary;
  /** Seconds from the end of the write window until the last event arrived. */
  drainSeconds: number;
}

interface Acked {
  occurredAt: number;
  ackedAt: number;
}

const get = (base: URL, path: string) => httpRequest("GET", new URL(path, base), { ...benchAuthorization });

async function put(base: URL, path: string, body: unknown): Promise<{ status: number; body: string }> {
  const response = await fetch(new URL(path, base), {
    method: "PUT",
    headers: { ...benchAuthorization, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.text() };
}

function record(arrivals: Map<string, number>, duplicates: { count: number }, ids: readonly string[]): void {
  const at = Date.now();
  for (const id of ids) {
    if (arrivals.has(id)) duplicates.count++;
    else arrivals.set(id, at);
  }
}

function summarizeArrivals(
  arrivals: Map<string, number>,
  duplicates: number,
  acked: Map<string, Acked>,
  windowEnd: number,
): Arrivals {
  const afterCommit: number[] = [];
  const afterAck: number[] = [];
  let missing = 0;
  let last = windowEnd;
  for (const [id, ack] of acked) {
    const at = arrivals.get(id);
    if (at === undefined) {
      missing++;
      continue;
    }
    afterCommit.push(at - ack.occurredAt);
    afterAck.push(at - ack.ackedAt);
    last = Math.max(last, at);
  }
  return {
    received: acked.size - missing,
    missing,
    duplicates,
    afterCommit: summarize(afterCommit),
    afterAck: summarize(afterAck),
    drainSeconds: (last - windowEnd) / 1000,
  };
}

export async function feedDelivery(
  stack: Stack,
  plan: BenchPlan["feed"],
  log: (line: string) => void,
): Promise<FeedDeliveryResult> {
  const base = stack.worker.url;
  const failures: string[] = [];
  const note = (failure: string) => {
    if (failures.length < 5) failures.push(failure);
  };
  const streams = await Promise.all(Array.from({ length: plan.writers }, () => createStream(base)));

  // The receiver, in this process.
  const delivered = new Map<string, number>();
  const deliveredTwice = { count: 0 };
  let deliveries = 0;
  const receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        events: Array<{ event_id: string }>;
      };
      deliveries++;
      record(
        delivered,
        deliveredTwice,
        body.events.map((event) => event.event_id),
      );
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const address = receiver.address();
  const port = address !== null && typeof address === "object" ? address.port : 0;

  // The subscription starts at the feed's head now; its checkpoint is where /watch starts too.
  const name = `bench-${randomUUID().slice(0, 8)}`;
  const created = await put(base, `/subscriptions/${name}`, {
    url: `http://127.0.0.1:${port}/hooks`,
    stream_types: [BENCH_STREAM_TYPE],
    from: "now",
    batch_size: plan.batchSize,
  });
  if (created.status !== 201)
    throw new Error(`PUT /subscriptions answered ${created.status}: ${created.body}`);
  const after = (JSON.parse(created.body) as { checkpoint: string }).checkpoint;

  const watched = new Map<string, number>();
  const watchedTwice = { count: 0 };
  const url = new URL(`/watch?after=${after}&stream_type=${BENCH_STREAM_TYPE}`, base);
  url.protocol = "ws:";
  const socket = new WebSocket(url, { headers: { ...benchAuthorization }, perMessageDeflate: false });
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { type?: string; event?: { event_id: string } };
    if (message.type === "event" && message.event !== undefined)
      record(watched, watchedTwice, [message.event.event_id]);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });

  const acked = new Map<string, Acked>();
  try {
    log(`  ${plan.writers} writers, one stream each, ${plan.durationMs / 1000} s …`);
    const started = performance.now();
    const loop = await runClosedLoop({
      writers: plan.writers,
      warmupMs: 0,
      durationMs: plan.durationMs,
      maxRequestsPerWriter: plan.maxRequestsPerWriter,
      send: async (writer, sequence) => {
        const response = await postAppend(
          base,
          streams[writer] as string,
          appendBody([contextEvent(`w${writer}`, sequence)]),
        );
        const ackedAt = Date.now();
        if (response.status !== 201) {
          return {
            ok: false,
            units: 0,
            sentAt: response.sentAt,
            receivedAt: response.receivedAt,
            failure: `${response.status}`,
          };
        }
        const answer = JSON.parse(response.body) as { event_ids: string[] };
        for (const id of answer.event_ids) acked.set(id, { occurredAt: Number.NaN, ackedAt });
        return { ok: true, units: 1, sentAt: response.sentAt, receivedAt: response.receivedAt };
      },
    });
    const windowEnd = Date.now();
    for (const failure of loop.failures) note(`append: ${failure}`);
    const windowSeconds = (performance.now() - started) / 1000;

    // Every acknowledged event's occurred_at, from the database.
    const ids = [...acked.keys()];
    for (let index = 0; index < ids.length; index += 5_000) {
      const slice = ids.slice(index, index + 5_000);
      const rows = await stack.pool.query(
        "SELECT event_id::text AS id, (extract(epoch FROM occurred_at) * 1000)::float8 AS ms FROM workflow_events WHERE event_id = ANY($1::uuid[])",
        [slice],
      );
      for (const row of rows.rows as Array<{ id: string; ms: number }>) {
        const entry = acked.get(row.id);
        if (entry) entry.occurredAt = row.ms;
      }
    }

    // Wait (bounded) for both to have everything.
    const deadline = Date.now() + plan.drainTimeoutMs;
    while (Date.now() < deadline && (watched.size < acked.size || delivered.size < acked.size)) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const watch = summarizeArrivals(watched, watchedTwice.count, acked, windowEnd);
    const subscription = summarizeArrivals(delivered, deliveredTwice.count, acked, windowEnd);
    if (watch.missing > 0) note(`${watch.missing} events never reached the /watch client`);
    if (subscription.missing > 0) note(`${subscription.missing} events never reached the receiver`);

    // The feed read back: GET /events from the same checkpoint, pages of 1,000.
    let next = after;
    let read = 0;
    let pages = 0;
    const readStarted = performance.now();
    for (;;) {
      const page = await get(base, `/events?after=${next}&stream_type=${BENCH_STREAM_TYPE}&limit=1000`);
      if (page.status !== 200) {
        note(`GET /events answered ${page.status}`);
        break;
      }
      const body = JSON.parse(page.body) as { events: unknown[]; next: string };
      pages++;
      read += body.events.length;
      next = body.next;
      if (body.events.length < 1000) break;
    }
    const readSeconds = (performance.now() - readStarted) / 1000;
    log(
      `  ${acked.size} events; /watch p50 ${watch.afterCommit.p50.toFixed(0)} ms, p99 ${watch.afterCommit.p99.toFixed(0)} ms; ` +
        `subscription p50 ${subscription.afterCommit.p50.toFixed(0)} ms, p99 ${subscription.afterCommit.p99.toFixed(0)} ms; ` +
        `GET /events ${(read / readSeconds).toFixed(0)} events/s`,
    );
    return {
      writers: plan.writers,
      windowSeconds,
      appended: acked.size,
      appendsPerSecond: acked.size / windowSeconds,
      watch,
      subscription: { ...subscription, batchSize: plan.batchSize, deliveries },
      feedRead: { events: read, seconds: readSeconds, eventsPerSecond: read / readSeconds, pages },
      failures,
    };
  } finally {
    socket.close(1000);
    await fetch(new URL(`/subscriptions/${name}`, base), {
      method: "DELETE",
      headers: benchAuthorization,
    }).catch(() => undefined);
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
}
