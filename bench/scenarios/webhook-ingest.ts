import { randomBytes } from "node:crypto";
import { signWebhook } from "../lib/auth";
import { type Completion, inParallel, runClosedLoop } from "../lib/closed-loop";
import { closeConnections, httpRequest } from "../lib/http-client";
import type { BenchPlan } from "../lib/plan";
import type { Stack } from "../lib/stack";
import { type Summary, summarize } from "../lib/stats";
import { commitCounts, contextEvent, createStream } from "../lib/workflow-events";
import { appendCompletion } from "./stream-throughput";

// 6. Webhook ingestion: POST /webhooks/bench, signed as Standard Webhooks describes
// (HMAC-SHA256 over id.timestamp.body with the source's secret, checked by the Worker),
// one context_updated event per delivery, every delivery a new webhook-id. Several
// senders at once, spread over a set of streams (or all on one stream). Beside each, the
// same load as plain appends (bearer token, no event ids) shows what the webhook path adds:
// the signature check, and the actor's lookup of the derived event ids before each write.

export interface WebhookRow {
  senders: number;
  streams: number;
  deliveriesPerSecond: number;
  latency: Summary;
  eventsPerTransaction: number;
  failed: number;
  failures: string[];
  /** The same senders and streams sending plain appends. */
  plain: { appendsPerSecond: number; latency: Summary; failed: number };
}

export interface WebhookIngestResult {
  windowMs: number;
  warmupMs: number;
  rows: WebhookRow[];
}

export async function webhookIngest(
  stack: Stack,
  plan: BenchPlan["webhooks"],
  log: (line: string) => void,
): Promise<WebhookIngestResult> {
  const rows: WebhookRow[] = [];
  const run = randomBytes(6).toString("hex");
  for (const [configIndex, config] of plan.configs.entries()) {
    closeConnections();
    const base = stack.worker.url;
    const url = new URL("/webhooks/bench", base);
    const streams = await inParallel(
      Array.from({ length: config.streams }, (_, index) => index),
      16,
      () => createStream(base),
    );
    const send = async (sender: number, sequence: number): Promise<Completion> => {
      const streamId = streams[(sender + sequence) % streams.length] ?? "";
      const body = JSON.stringify({
        stream_id: streamId,
        events: [{ event: contextEvent(`s${sender % 16}`, sequence) }],
      });
      const webhookId = `msg_${run}_${configIndex}_${sender}_${sequence}`;
      const timestamp = Math.floor(Date.now() / 1000);
      const response = await httpRequest(
        "POST",
        url,
        {
          "content-type": "application/json",
          "webhook-id": webhookId,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signWebhook(stack.webhookSecret, webhookId, timestamp, body),
        },
        body,
      );
      const ok = response.status === 201;
      return {
        ok,
        units: ok ? 1 : 0,
        sentAt: response.sentAt,
        receivedAt: response.receivedAt,
        ...(ok ? {} : { failure: `HTTP ${response.status}: ${response.body.slice(0, 200)}` }),
      };
    };
    const result = await runClosedLoop({
      writers: config.senders,
      warmupMs: plan.warmupMs,
      durationMs: plan.durationMs,
      maxRequestsPerWriter: plan.maxRequestsPerWriter,
      send,
    });
    const commits = await commitCounts(stack.pool, streams);
    closeConnections();
    const plainStreams = await inParallel(
      Array.from({ length: config.streams }, (_, index) => index),
      16,
      () => createStream(base),
    );
    const plain = await runClosedLoop({
      writers: config.senders,
      warmupMs: plan.warmupMs,
      durationMs: plan.durationMs,
      maxRequestsPerWriter: plan.maxRequestsPerWriter,
      send: (sender, sequence) =>
        appendCompletion(base, plainStreams[(sender + sequence) % plainStreams.length] ?? "", [
          contextEvent(`s${sender % 16}`, sequence),
        ]),
    });
    const row: WebhookRow = {
      senders: config.senders,
      streams: config.streams,
      deliveriesPerSecond: result.unitsPerSecond,
      latency: summarize(result.latencies),
      eventsPerTransaction: commits.transactions === 0 ? Number.NaN : commits.events / commits.transactions,
      failed: result.failedRequests,
      failures: result.failures,
      plain: {
        appendsPerSecond: plain.unitsPerSecond,
        latency: summarize(plain.latencies),
        failed: plain.failedRequests,
      },
    };
    rows.push(row);
    log(
      `  ${config.senders} sender(s) over ${config.streams} stream(s): ${row.deliveriesPerSecond.toFixed(0)} ` +
        `deliveries/s, p50 ${row.latency.p50.toFixed(1)} ms (plain appends: ${row.plain.appendsPerSecond.toFixed(0)}/s, ` +
        `p50 ${row.plain.latency.p50.toFixed(1)} ms)` +
        (row.failed > 0 ? `, ${row.failed} failed: ${row.failures[0] ?? ""}` : ""),
    );
  }
  closeConnections();
  return { windowMs: plan.durationMs, warmupMs: plan.warmupMs, rows };
}
