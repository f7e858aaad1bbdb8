import { performance } from "node:perf_hooks";

// Closed-loop load: each writer sends its next request when its previous one is
// answered. Every loop is bounded in time (warm-up + measured window) and in count
// (maxRequestsPerWriter). Only requests answered inside the measured window count
// towards rates and latencies, so start-up and tail effects stay out of the numbers.

export interface Completion {
  ok: boolean;
  /** Events (or deliveries) this request carried. */
  units: number;
  sentAt: number;
  receivedAt: number;
  /** Server-Timing durations, when the answer had them. */
  timing?: Record<string, number>;
  /** A short description of a failure, kept for the report. */
  failure?: string;
  /** What kind of failure (e.g. "409"), counted per kind in the result; default "failed". */
  kind?: string;
}

export interface ClosedLoopOptions {
  writers: number;
  warmupMs: number;
  durationMs: number;
  maxRequestsPerWriter: number;
  send: (writer: number, sequence: number) => Promise<Completion>;
}

export interface ClosedLoopResult {
  writers: number;
  windowMs: number;
  /** Successful units answered inside the window, per second. */
  unitsPerSecond: number;
  requestsPerSecond: number;
  okRequests: number;
  failedRequests: number;
  failures: string[];
  /** Latencies (ms) of successful requests answered inside the window. */
  latencies: number[];
  timings: Array<Record<string, number>>;
  /** Requests sent in total, warm-up included. */
  sent: number;
  /** True when a writer stopped because it hit maxRequestsPerWriter before the window ended. */
  hitCountBound: boolean;
  /** Successful requests answered inside the window, per writer (index = writer). */
  okByWriter: number[];
  /** Failed requests answered inside the window, by Completion.kind. */
  failedByKind: Record<string, number>;
}

export async function runClosedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const startedAt = performance.now();
  const windowStart = startedAt + options.warmupMs;
  const windowEnd = windowStart + options.durationMs;
  const latencies: number[] = [];
  const timings: Array<Record<string, number>> = [];
  const failures: string[] = [];
  let units = 0;
  let okRequests = 0;
  let failedRequests = 0;
  let sent = 0;
  let hitCountBound = false;
  const okByWriter = new Array<number>(options.writers).fill(0);
  const failedByKind: Record<string, number> = {};

  const writer = async (index: number) => {
    let sequence = 0;
    while (performance.now() < windowEnd) {
      if (sequence >= options.maxRequestsPerWriter) {
        hitCountBound = true;
        return;
      }
      sent++;
      let completion: Completion;
      try {
        completion = await options.send(index, sequence);
      } catch (error) {
        const now = performance.now();
        completion = {
          ok: false,
          units: 0,
          sentAt: now,
          receivedAt: now,
          failure: error instanceof Error ? error.message : String(error),
        };
      }
      sequence++;
      const inWindow = completion.receivedAt >= windowStart && completion.receivedAt <= windowEnd;
      if (!inWindow) continue;
      if (completion.ok) {
        okRequests++;
        okByWriter[index] = (okByWriter[index] ?? 0) + 1;
        units += completion.units;
        latencies.push(completion.receivedAt - completion.sentAt);
        if (completion.timing) timings.push(completion.timing);
      } else {
        failedRequests++;
        const kind = completion.kind ?? "failed";
        failedByKind[kind] = (failedByKind[kind] ?? 0) + 1;
        if (failures.length < 5 && completion.failure) failures.push(completion.failure);
      }
    }
  };
  await Promise.all(Array.from({ length: options.writers }, (_, index) => writer(index)));
  const windowMs = options.durationMs;
  return {
    writers: options.writers,
    windowMs,
    unitsPerSecond: units / (windowMs / 1000),
    requestsPerSecond: okRequests / (windowMs / 1000),
    okRequests,
    failedRequests,
    failures,
    latencies,
    timings,
    sent,
    hitCountBound,
    okByWriter,
    failedByKind,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  return results;
}
