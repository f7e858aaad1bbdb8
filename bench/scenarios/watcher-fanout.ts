import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { benchAuthorization } from "../lib/auth";
import { inParallel, sleep } from "../lib/closed-loop";
import { type CpuReport, startCpuMeter } from "../lib/cpu";
import { closeConnections } from "../lib/http-client";
import type { BenchPlan } from "../lib/plan";
import type { Stack } from "../lib/stack";
import { type Summary, summarize } from "../lib/stats";
import { appendBody, contextEvent, createStream, postAppend } from "../lib/workflow-events";

// 5. Watcher fan-out: N WebSocket watchers (the ws package, as a client would use it)
// follow one stream; one writer appends one event at a time and waits until every
// watcher has it before the next. For every (append, watcher) pair:
//   after ack   = arrival at the watcher − arrival of the append's 201 at the writer;
//                 negative when the event reached the watcher before the writer's answer
//                 did (the actor pushes to watchers before it answers the append);
//   after send  = arrival at the watcher − the moment the append was sent.
// All clocks are this process's performance.now(): watchers, writer and timestamps
// share one event loop, which is also the limit of this measurement (1,000 frames per
// event are read one after another).

export interface WatcherRow {
  watchers: number;
  connected: number;
  connectSeconds: number;
  appends: number;
  afterAck: Summary;
  afterSend: Summary;
  appendLatency: Summary;
  /** workerd CPU per append while the watchers were live (ms): the commit plus its fan-out. */
  workerdCpuMsPerAppend: number;
  /** This process's CPU per append (ms): reading every watcher's frame. */
  loadGeneratorCpuMsPerAppend: number;
  /** (append, watcher) pairs that never arrived within the timeout. */
  missing: number;
  failures: string[];
}

export interface WatcherFanoutResult {
  rows: WatcherRow[];
}

interface Watching {
  socket: WebSocket;
  /** Arrival time of each version. */
  arrivals: Map<number, number>;
  caughtUp: Promise<void>;
}

function openWatcher(base: URL, streamId: string, onArrival: (version: number) => void): Promise<Watching> {
  const url = new URL(`/streams/${streamId}/watch?from=0`, base);
  url.protocol = "ws:";
  const socket = new WebSocket(url, { headers: { ...benchAuthorization }, perMessageDeflate: false });
  const arrivals = new Map<number, number>();
  let markCaughtUp: () => void = () => undefined;
  const caughtUp = new Promise<void>((resolve) => {
    markCaughtUp = resolve;
  });
  socket.on("message", (data) => {
    const at = performance.now();
    const message = JSON.parse(String(data)) as { type?: string; event?: { version?: number } };
    if (message.type === "event" && typeof message.event?.version === "number") {
      arrivals.set(message.event.version, at);
      onArrival(message.event.version);
    } else if (message.type === "caught_up") {
      markCaughtUp();
    }
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error("watcher did not connect within 30 s"));
    }, 30_000);
    socket.once("open", () => {
      clearTimeout(timer);
      resolve({ socket, arrivals, caughtUp });
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once("unexpected-response", (_request, response) => {
      clearTimeout(timer);
      reject(new Error(`watch refused with HTTP ${response.statusCode}`));
    });
  });
}

async function closeWatchers(watchers: readonly Watching[]): Promise<void> {
  await inParallel(watchers, 100, async ({ socket }) => {
    if (socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.close(1000);
    await Promise.race([closed, sleep(5_000)]);
    // The close handshake may not have finished (TS narrows readyState from the check above).
    if ((socket.readyState as number) !== WebSocket.CLOSED) socket.terminate();
  });
}

export async function watcherFanout(
  stack: Stack,
  plan: BenchPlan["watchers"],
  log: (line: string) => void,
): Promise<WatcherFanoutResult> {
  const rows: WatcherRow[] = [];
  for (const count of plan.counts) {
    closeConnections();
    const base = stack.worker.url;
    const streamId = await createStream(base);
    // Arrivals per version, counted as they come (O(1) per frame, so that counting does
    // not delay the frames behind it), and the one waiter for the version in flight.
    const arrived = new Map<number, number>();
    let waiting: { version: number; resolve: () => void } | undefined;
    const onArrival = (version: number) => {
      const count = (arrived.get(version) ?? 0) + 1;
      arrived.set(version, count);
      if (waiting?.version === version && count >= watchersConnected) waiting.resolve();
    };
    let watchersConnected = Number.POSITIVE_INFINITY;
    const failures: string[] = [];
    const connectStarted = performance.now();
    const opened = await inParallel(
      Array.from({ length: count }, (_, index) => index),
      50,
      async () => {
        try {
          return await openWatcher(base, streamId, onArrival);
        } catch (error) {
          if (failures.length < 3) failures.push(error instanceof Error ? error.message : String(error));
          return undefined;
        }
      },
    );
    const watchers = opened.filter((watcher): watcher is Watching => watcher !== undefined);
    watchersConnected = watchers.length;
    await Promise.race([
      Promise.all(watchers.map((watcher) => watcher.caughtUp)),
      sleep(plan.deliveryTimeoutMs),
    ]);
    const connectSeconds = (performance.now() - connectStarted) / 1000;

    const afterAck: number[] = [];
    const afterSend: number[] = [];
    const appendLatency: number[] = [];
    let missing = 0;
    const meter = startCpuMeter();
    let cpu: CpuReport;
    try {
      for (let index = 0; index < plan.appends; index++) {
        const response = await postAppend(base, streamId, appendBody([contextEvent("fanout", index)]));
        if (response.status !== 201) {
          if (failures.length < 3)
            failures.push(`append answered ${response.status}: ${response.body.slice(0, 200)}`);
          continue;
        }
        const version = (JSON.parse(response.body) as { version: number }).version;
        appendLatency.push(response.receivedAt - response.sentAt);
        if ((arrived.get(version) ?? 0) < watchers.length) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, plan.deliveryTimeoutMs);
            waiting = {
              version,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            };
          });
          waiting = undefined;
        }
        const timedOut = (arrived.get(version) ?? 0) < watchers.length;
        for (const watcher of watchers) {
          const at = watcher.arrivals.get(version);
          if (at === undefined) {
            missing++;
            continue;
          }
          afterAck.push(at - response.receivedAt);
          afterSend.push(at - response.sentAt);
        }
        if (timedOut) {
          // Something is stuck: waiting out the timeout for every further append would only burn time.
          if (failures.length < 3)
            failures.push(
              `version ${version} did not reach every watcher within ${plan.deliveryTimeoutMs} ms`,
            );
          break;
        }
        await sleep(plan.gapMs);
      }
    } finally {
      cpu = meter.stop();
      await closeWatchers(watchers);
    }
    const row: WatcherRow = {
      watchers: count,
      connected: watchers.length,
      connectSeconds,
      appends: appendLatency.length,
      afterAck: summarize(afterAck),
      afterSend: summarize(afterSend),
      appendLatency: summarize(appendLatency),
      workerdCpuMsPerAppend: ((cpu.seconds.workerd ?? 0) * 1000) / Math.max(1, appendLatency.length),
      loadGeneratorCpuMsPerAppend:
        ((cpu.seconds.loadGenerator ?? 0) * 1000) / Math.max(1, appendLatency.length),
      missing,
      failures,
    };
    rows.push(row);
    log(
      `  ${count} watchers (${watchers.length} connected in ${connectSeconds.toFixed(1)} s): after ack p50 ` +
        `${row.afterAck.p50.toFixed(1)} ms, p99 ${row.afterAck.p99.toFixed(1)} ms; after send p99 ` +
        `${row.afterSend.p99.toFixed(1)} ms` +
        (missing > 0 ? `, ${missing} missing` : ""),
    );
  }
  closeConnections();
  return { rows };
}
