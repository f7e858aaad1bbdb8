import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inject } from "vitest";
import { startWebSocketBridge, type WebSocketBridge } from "../../scripts/local/websocket-bridge";
import { type RunningWorker, startWorker } from "../e2e/worker-harness";

// What the three reliability tests share: the scale (RELIABILITY_SCALE=short|full),
// a seeded random source (RELIABILITY_SEED reproduces a run's choices), the results
// file scripts/soak.ts turns into docs/reliability.md, plain HTTP with a deadline,
// and the pieces of the stack a test owns and breaks: its own bridge and Worker.

export type ScaleName = "short" | "full";

export interface Scale {
  name: ScaleName;
  ledger: { writers: number; streams: number; opsPerWriter: number; maxMs: number };
  faults: {
    writers: number;
    streams: number;
    /** Faults injected, in rotation over the kinds. */
    faults: number;
    /** Pause between two faults while the writers keep appending. */
    gapMs: number;
    maxMs: number;
  };
  badInput: { cases: number; concurrency: number; maxMs: number };
}

const SCALES: Record<ScaleName, Scale> = {
  short: {
    name: "short",
    ledger: { writers: 4, streams: 2, opsPerWriter: 30, maxMs: 25_000 },
    faults: { writers: 3, streams: 2, faults: 4, gapMs: 700, maxMs: 40_000 },
    badInput: { cases: 400, concurrency: 8, maxMs: 30_000 },
  },
  full: {
    name: "full",
    ledger: { writers: 8, streams: 4, opsPerWriter: 400, maxMs: 180_000 },
    faults: { writers: 6, streams: 3, faults: 36, gapMs: 2_500, maxMs: 300_000 },
    badInput: { cases: 6_000, concurrency: 12, maxMs: 150_000 },
  },
};

/** The run's scale: RELIABILITY_SCALE=short (the default, inside `npm test`) or full (`npm run soak`). */
export function readScale(raw: string | undefined = process.env.RELIABILITY_SCALE): Scale {
  const name = raw === undefined || raw === "" ? "short" : raw;
  if (name !== "short" && name !== "full") {
    throw new Error(`RELIABILITY_SCALE must be "short" or "full", got ${JSON.stringify(raw)}`);
  }
  return SCALES[name];
}

/** A test's own margin over its scale's budget, for vitest's timeout. */
export function testTimeout(maxMs: number): number {
  return maxMs + 60_000;
}

/**
 * The run's seed: RELIABILITY_SEED when given (to reproduce a run), otherwise a fresh
 * one. Each part derives its own stream from it, so the parts do not depend on each other.
 */
export function seedFor(part: string): { seed: number; partSeed: number } {
  const given = process.env.RELIABILITY_SEED;
  const seed =
    given !== undefined && given !== "" ? Number(given) >>> 0 : Math.floor(Math.random() * 0xffffffff) >>> 0;
  let hash = 2166136261;
  for (const char of part) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619);
  return { seed, partSeed: (seed ^ hash) >>> 0 };
}

/** A small seeded generator (mulberry32): the same seed gives the same choices. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** In [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** A whole number in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[Math.floor(this.next() * items.length)] as T;
  }
  /** One of the items, by weight. */
  weighted<T>(items: ReadonlyArray<readonly [number, T]>): T {
    const total = items.reduce((sum, [weight]) => sum + weight, 0);
    let point = this.next() * total;
    for (const [weight, item] of items) {
      point -= weight;
      if (point < 0) return item;
    }
    const last = items[items.length - 1];
    if (last === undefined) throw new Error("weighted pick from an empty list");
    return last[1];
  }
  /** A fresh seed for a sub-generator (fast-check). */
  seed(): number {
    return Math.floor(this.next() * 0x7fffffff);
  }
}

/**
 * Writes one part's figures to RELIABILITY_RESULTS_DIR/<part>.json when that is set
 * (scripts/soak.ts sets it and turns the files into docs/reliability.md).
 */
export function recordResults(part: string, figures: Record<string, unknown>): void {
  const dir = process.env.RELIABILITY_RESULTS_DIR;
  if (dir === undefined || dir === "") return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${part}.json`), `${JSON.stringify(figures, null, 2)}\n`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The Standard Webhooks test secrets, as vitest.config.ts gives them to the worker project. */
export const WEBHOOK_TEST_SECRETS = {
  acme: ["whsec_GhloRf6yH0XHh7sqXylmJNHPLW6HWWchO8k2NR2nZsM="],
  rotating: [
    "whsec_MyorDvj0PvHN+CGHTYEVKNtGCpTaWuVTplQrLk94lVc=",
    "whsec_YGM8EJ+pNMRsjhsTh7+SRtCaEMt6W/mw6TRr+VIx/5Q=",
  ],
} as const;

/**
 * A bridge of the test's own to the run's database, on `port` (0: any free port). A bridge
 * brought back in place of an earlier one passes that one's `path`, so the Worker's
 * DATABASE_WS_PROXY still names it.
 */
export async function bridgeToTestDatabase(port = 0, path?: string): Promise<WebSocketBridge> {
  const target = new URL(inject("databaseUrl"));
  const options = {
    target: { host: target.hostname, port: Number(target.port || 5432) },
    host: "127.0.0.1",
    ...(path === undefined ? {} : { path }),
  };
  // Reopening the same port right after closing it can meet the old socket for a moment.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWebSocketBridge({ ...options, port });
    } catch (error) {
      if (attempt >= 20 || port === 0) throw error;
      await sleep(100);
    }
  }
}

/** The Worker under test, restartable: `url` always names the instance currently running. */
export class WorkerUnderTest {
  private running: RunningWorker | undefined;
  restarts = 0;

  private constructor(
    private readonly proxyUrl: string,
    private readonly vars: Record<string, string>,
  ) {}

  static async start(proxyUrl: string, vars: Record<string, string> = {}): Promise<WorkerUnderTest> {
    const worker = new WorkerUnderTest(proxyUrl, {
      WEBHOOK_SECRETS: JSON.stringify(WEBHOOK_TEST_SECRETS),
      ...vars,
    });
    worker.running = await startWorker(worker.proxyUrl, worker.vars);
    return worker;
  }

  get url(): URL {
    if (this.running === undefined) throw new Error("the Worker is not running");
    return this.running.url;
  }

  /** Whether a Worker is up (false while it restarts). */
  get up(): boolean {
    return this.running !== undefined;
  }

  /** Throws the whole stack away (workerd, the actors and their memory) and starts a fresh one. */
  async restart(): Promise<void> {
    const old = this.running;
    this.running = undefined;
    await old?.stop();
    this.running = await startWorker(this.proxyUrl, this.vars);
    this.restarts++;
  }

  async stop(): Promise<void> {
    const old = this.running;
    this.running = undefined;
    await old?.stop();
  }
}

/** The answer to one HTTP attempt, or why there was none. */
export type Attempt =
  | { kind: "answer"; status: number; contentType: string | null; text: string; json: unknown }
  | { kind: "failed"; reason: string };

/**
 * One request with fetch and a deadline. `abortAfterMs` cuts the request from the
 * client's side (the server may or may not have acted on it: an ambiguous failure).
 */
export async function attempt(
  url: URL,
  init: { method: string; headers?: Record<string, string>; body?: string },
  options: { timeoutMs: number; abortAfterMs?: number },
): Promise<Attempt> {
  const controller = new AbortController();
  let reason = "";
  const timer = setTimeout(() => {
    reason = `no answer within ${options.timeoutMs} ms`;
    controller.abort();
  }, options.timeoutMs);
  const cut =
    options.abortAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          reason = `cut by the client after ${options.abortAfterMs} ms`;
          controller.abort();
        }, options.abortAfterMs);
  // Node's fetch (undici) does not always settle a request aborted mid-flight (seen here:
  // one cut after 22 ms never settled, and the later deadline's abort() was a no-op), so
  // the abort itself ends the attempt.
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
  });
  const exchange = (async () => {
    const response = await fetch(url, { ...init, signal: controller.signal });
    return { response, text: await response.text() };
  })();
  exchange.catch(() => undefined);
  aborted.catch(() => undefined);
  try {
    const { response, text } = await Promise.race([exchange, aborted]);
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return {
      kind: "answer",
      status: response.status,
      contentType: response.headers.get("content-type"),
      text,
      json,
    };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return {
      kind: "failed",
      reason:
        reason ||
        (cause ? `network: ${cause}` : `network: ${error instanceof Error ? error.message : error}`),
    };
  } finally {
    clearTimeout(timer);
    if (cut) clearTimeout(cut);
  }
}

/** Restarts the real PostgreSQL server of this machine (only ever called when the run uses one). */
export function restartPostgres(): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      "sh",
      ["-c", "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart"],
      { timeout: 60_000 },
      (error, _stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve()),
    );
  });
}

/** Median and maximum of some durations, rounded to milliseconds. */
export function spread(values: readonly number[]): { median: number; max: number } {
  if (values.length === 0) return { median: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
    max: Math.round(sorted[sorted.length - 1] ?? 0),
  };
}
