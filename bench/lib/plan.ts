// What one run measures, for --quick and for the full run. Every count here bounds a
// loop; every duration bounds a measured window.

export type ScenarioName =
  | "latency"
  | "throughput"
  | "aggregate"
  | "cold-start"
  | "watchers"
  | "webhooks"
  | "peer"
  | "feed";

export const SCENARIOS: readonly ScenarioName[] = [
  "latency",
  "throughput",
  "aggregate",
  "cold-start",
  "watchers",
  "webhooks",
  "peer",
  "feed",
];

export interface Window {
  warmupMs: number;
  durationMs: number;
  /** Bound on requests per writer, whatever the window. */
  maxRequestsPerWriter: number;
}

export interface BenchPlan {
  mode: "quick" | "full";
  latency: { warmup: number; rounds: number; perRound: number };
  throughput: Window & { writers: number[]; batchWriters: number[]; batchSize: number };
  aggregate: Window & {
    streams: number;
    configs: Array<{ writersPerStream: number; batchSize: number }>;
  };
  /** budgetMs bounds the measuring part (requests can time out at 30 s each). */
  coldStart: { sizes: number[]; repetitions: number; freshWorkerSizes: number[]; budgetMs: number };
  watchers: { counts: number[]; appends: number; gapMs: number; deliveryTimeoutMs: number };
  webhooks: Window & { configs: Array<{ senders: number; streams: number }> };
  /** The global feed: writers (one stream each) while a /watch client and a subscription follow. */
  feed: Omit<Window, "warmupMs"> & { writers: number; batchSize: number; drainTimeoutMs: number };
  /** glyph-streams against the peer (Emmett), scenario by scenario. */
  peer: Window & {
    /** The short-stream case starts a new stream after this many events. */
    shortStreamEvents: number;
    /** Stream lengths for the one-writer cases on a long stream. */
    longStreams: number[];
    /** Concurrent writers on one stream. */
    writers: number;
    /** Streams (one writer each) in the many-streams case. */
    streams: number;
    /** Also run the peer with Emmett's retry on version conflict, `any` case. */
    anyWithEmmettRetry: boolean;
    /** Appends one after another for statements and transactions per append. */
    statementAppends: number;
  };
}

function feedPlan(mode: "quick" | "full"): BenchPlan["feed"] {
  return {
    writers: 64,
    batchSize: 100,
    durationMs: mode === "quick" ? 3_000 : 10_000,
    maxRequestsPerWriter: 100_000,
    drainTimeoutMs: 60_000,
  };
}

function peerPlan(mode: "quick" | "full"): BenchPlan["peer"] {
  const quick = mode === "quick";
  return {
    shortStreamEvents: 50,
    longStreams: [1_000, 5_000],
    writers: 64,
    streams: 64,
    anyWithEmmettRetry: true,
    statementAppends: quick ? 50 : 200,
    warmupMs: quick ? 500 : 1_500,
    durationMs: quick ? 2_000 : 10_000,
    maxRequestsPerWriter: quick ? 20_000 : 200_000,
  };
}

export function planFor(mode: "quick" | "full"): BenchPlan {
  if (mode === "quick") {
    return {
      mode,
      latency: { warmup: 20, rounds: 2, perRound: 50 },
      throughput: {
        writers: [1, 8, 64, 256],
        batchWriters: [1, 8],
        batchSize: 50,
        warmupMs: 500,
        durationMs: 2_000,
        maxRequestsPerWriter: 20_000,
      },
      aggregate: {
        streams: 64,
        configs: [{ writersPerStream: 1, batchSize: 1 }],
        warmupMs: 500,
        durationMs: 2_000,
        maxRequestsPerWriter: 20_000,
      },
      coldStart: {
        sizes: [100, 1_000, 10_000, 100_000],
        repetitions: 1,
        freshWorkerSizes: [],
        budgetMs: 40_000,
      },
      watchers: { counts: [10, 100, 1_000], appends: 10, gapMs: 20, deliveryTimeoutMs: 15_000 },
      webhooks: {
        configs: [{ senders: 8, streams: 16 }],
        warmupMs: 500,
        durationMs: 2_000,
        maxRequestsPerWriter: 20_000,
      },
      peer: peerPlan(mode),
      feed: feedPlan(mode),
    };
  }
  return {
    mode,
    latency: { warmup: 300, rounds: 5, perRound: 200 },
    throughput: {
      writers: [1, 8, 64, 256],
      batchWriters: [1, 8, 64, 256],
      batchSize: 50,
      warmupMs: 1_500,
      durationMs: 10_000,
      maxRequestsPerWriter: 200_000,
    },
    aggregate: {
      streams: 64,
      configs: [
        { writersPerStream: 1, batchSize: 1 },
        { writersPerStream: 4, batchSize: 1 },
        { writersPerStream: 1, batchSize: 50 },
      ],
      warmupMs: 1_500,
      durationMs: 10_000,
      maxRequestsPerWriter: 200_000,
    },
    coldStart: {
      sizes: [100, 1_000, 10_000, 100_000],
      repetitions: 3,
      freshWorkerSizes: [100, 100_000],
      budgetMs: 180_000,
    },
    watchers: { counts: [10, 100, 1_000], appends: 40, gapMs: 20, deliveryTimeoutMs: 15_000 },
    webhooks: {
      configs: [
        { senders: 1, streams: 16 },
        { senders: 8, streams: 16 },
        { senders: 32, streams: 16 },
        { senders: 32, streams: 1 },
      ],
      warmupMs: 1_500,
      durationMs: 10_000,
      maxRequestsPerWriter: 200_000,
    },
    peer: peerPlan(mode),
    feed: feedPlan(mode),
  };
}

/**
 * How long the benchmark's /sql endpoint keeps an idle server connection (npm start's
 * keeps it 10 s): runs that count server connections wait this long for those of the runs
 * before them to close.
 */
export const BENCH_ENDPOINT_IDLE_MS = 1_000;
/** How long a run that counts server connections waits, at most, for those of earlier runs to close. */
export const BENCH_CONNECTIONS_WAIT_MS = BENCH_ENDPOINT_IDLE_MS + 2_000;
