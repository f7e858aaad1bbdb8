import type { AggregateThroughputResult } from "../scenarios/aggregate-throughput";
import type { AppendLatencyResult } from "../scenarios/append-latency";
import type { ColdStartResult } from "../scenarios/cold-start";
import type { FeedDeliveryResult } from "../scenarios/feed-delivery";
import type { PeerComparisonResult } from "../scenarios/peer-comparison";
import type { StreamThroughputResult } from "../scenarios/stream-throughput";
import type { WatcherFanoutResult } from "../scenarios/watcher-fanout";
import type { WebhookIngestResult } from "../scenarios/webhook-ingest";
import type { CpuReport } from "./cpu";
import type { IdleCheck, MachineInfo } from "./machine";
import type { BenchPlan, ScenarioName } from "./plan";
import type { DatabaseInfo } from "./stack";

/** Everything one run measured, as the report renders it. */
export interface BenchResults {
  plan: BenchPlan;
  startedAt: Date;
  durationSeconds: number;
  machine: MachineInfo;
  /** The commit (and src/ state) when the run ended; the Worker is bundled anew at each start. */
  commitAfter?: string;
  before: IdleCheck;
  after: IdleCheck;
  database: DatabaseInfo;
  latency?: AppendLatencyResult;
  throughput?: StreamThroughputResult;
  aggregate?: AggregateThroughputResult;
  coldStart?: ColdStartResult;
  watchers?: WatcherFanoutResult;
  webhooks?: WebhookIngestResult;
  peer?: PeerComparisonResult;
  feed?: FeedDeliveryResult;
  /** Scenarios that threw, with the reason. */
  errors: Partial<Record<ScenarioName, string>>;
  cpu: Partial<Record<ScenarioName, CpuReport>>;
  deletedStreams: number;
}
