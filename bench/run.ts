import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { newWebhookSecret } from "./lib/auth";
import { startCpuMeter } from "./lib/cpu";
import { idleCheck, machineInfo } from "./lib/machine";
import { planFor, SCENARIOS, type ScenarioName } from "./lib/plan";
import { renderReport } from "./lib/report";
import type { BenchResults } from "./lib/results";
import { type Stack, startStack } from "./lib/stack";
import { deleteCreatedStreams } from "./lib/workflow-events";
import { aggregateThroughput } from "./scenarios/aggregate-throughput";
import { appendLatency } from "./scenarios/append-latency";
import { coldStart } from "./scenarios/cold-start";
import { feedDelivery } from "./scenarios/feed-delivery";
import { peerComparison } from "./scenarios/peer-comparison";
import { streamThroughput } from "./scenarios/stream-throughput";
import { watcherFanout } from "./scenarios/watcher-fanout";
import { webhookIngest } from "./scenarios/webhook-ingest";

// `npm run bench [-- --quick] [--only a,b] [--out file.md] [--no-write] [--keep-data]`
// Starts the local stack (DATABASE_URL's PostgreSQL on this machine, or a throwaway
// embedded PostgreSQL), runs the scenarios, writes docs/benchmarks.md and docs/bench-*.svg.

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HELP = `npm run bench [-- options]

  --quick        short windows and fewer repetitions (about 3 minutes)
  --only LIST    comma-separated scenarios: ${SCENARIOS.join(", ")}
  --out FILE     where to write the report (default docs/benchmarks.md); charts go beside it as bench-*.svg
  --no-write     print the summary only
  --keep-data    leave the benchmark's streams in the database, and the peer's database
                 (glyph_bench_peer; default: delete them at the end)
  --save FILE    also write the raw results as JSON
  --render FILE  write the report from results saved with --save, without running anything

DATABASE_URL=postgres://user@127.0.0.1:5432/db uses that PostgreSQL (on this machine only);
without it a throwaway embedded PostgreSQL is used.
BENCH_PEER_CASES=exact-retry,conditional runs only those cases of the peer scenario
(ids: short, long-1000, long-5000, any, any-emmett-retry, exact-retry, conditional, streams).`;

const log = (line: string) => console.log(line);
let running: Stack | undefined;

// Ctrl-C or SIGTERM: stop workerd and the database host before leaving.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping the stack …`);
    const stopping = running?.close() ?? Promise.resolve();
    void stopping.finally(() => process.exit(130));
    setTimeout(() => process.exit(130), 10_000).unref();
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      out: { type: "string" },
      "no-write": { type: "boolean", default: false },
      "keep-data": { type: "boolean", default: false },
      save: { type: "string" },
      render: { type: "string" },
      help: { type: "boolean", default: false },
    },
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const out = resolve(ROOT, values.out ?? "docs/benchmarks.md");
  if (values.render !== undefined) {
    const saved = JSON.parse(readFileSync(resolve(values.render), "utf8")) as BenchResults;
    writeReport({ ...saved, startedAt: new Date(saved.startedAt) }, out);
    return 0;
  }
  const selected = selectScenarios(values.only);
  const plan = planFor(values.quick ? "quick" : "full");
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (major < 22 || (major === 22 && minor < 12)) {
    throw new Error(
      `wrangler needs Node.js >= 22.12 and this is ${process.version}; run it as \`npm run bench\`.`,
    );
  }

  const startedAt = new Date();
  const started = performance.now();
  log(`glyph-streams benchmark, ${plan.mode} run: ${selected.join(", ")}`);
  log("checking how busy the machine is (3 s) …");
  const before = await idleCheck();
  log(
    `  load average ${before.loadAverage.map((v) => v.toFixed(2)).join(" ")}, busy ${percent(before.busy)}`,
  );

  const stack = await startStack({
    databaseUrl: process.env.DATABASE_URL || undefined,
    webhookSecret: newWebhookSecret(),
    log,
  });
  running = stack;
  const results: Omit<BenchResults, "after" | "durationSeconds" | "deletedStreams"> = {
    plan,
    startedAt,
    machine: machineInfo(),
    before,
    database: stack.database,
    errors: {},
    cpu: {},
  };
  log(`database: ${stack.database.kind}, ${stack.database.version.split(" on ")[0]}`);
  log(`Worker: ${stack.worker.url.href}`);

  let deletedStreams = 0;
  try {
    for (const name of selected) {
      log(`\n${name}`);
      const meter = startCpuMeter();
      const scenarioStarted = performance.now();
      try {
        await runScenario(name, stack, plan, results, { keepData: values["keep-data"] });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        results.errors[name] = message;
        log(`  FAILED: ${message}`);
      }
      results.cpu[name] = meter.stop();
      log(`  (${((performance.now() - scenarioStarted) / 1000).toFixed(1)} s)`);
    }
  } finally {
    if (!values["keep-data"]) {
      deletedStreams = await deleteCreatedStreams(stack.pool).catch((error: unknown) => {
        log(
          `could not delete the benchmark's streams: ${error instanceof Error ? error.message : String(error)}`,
        );
        return 0;
      });
    }
    await stack.close();
    running = undefined;
  }

  log("\nchecking how busy the machine is (3 s) …");
  const after = await idleCheck();
  const complete: BenchResults = {
    ...results,
    commitAfter: machineInfo().commit,
    after,
    durationSeconds: (performance.now() - started) / 1000,
    deletedStreams,
  };
  log(`  load average ${after.loadAverage.map((v) => v.toFixed(2)).join(" ")}, busy ${percent(after.busy)}`);
  log(`\ndone in ${complete.durationSeconds.toFixed(0)} s`);
  if (values.save !== undefined) {
    mkdirSync(dirname(resolve(values.save)), { recursive: true });
    writeFileSync(resolve(values.save), `${JSON.stringify(complete, null, 1)}\n`);
    log(`saved the results to ${values.save}`);
  }
  if (!values["no-write"]) writeReport(complete, out);
  return Object.keys(complete.errors).length > 0 ? 1 : 0;
}

function writeReport(results: BenchResults, out: string): void {
  const report = renderReport(results, { chartPrefix: "bench-" });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, report.markdown);
  for (const chart of report.charts) writeFileSync(join(dirname(out), chart.file), chart.svg);
  log(`wrote ${relative(ROOT, out)} and ${report.charts.length} charts beside it`);
}

async function runScenario(
  name: ScenarioName,
  stack: Stack,
  plan: ReturnType<typeof planFor>,
  results: Omit<BenchResults, "after" | "durationSeconds" | "deletedStreams">,
  options: { keepData: boolean },
): Promise<void> {
  switch (name) {
    case "latency": {
      const result = await appendLatency(stack, plan.latency);
      results.latency = result;
      for (const path of result.paths) {
        log(
          `  ${path.summary.p50.toFixed(2).padStart(7)} ms p50, ${path.summary.p99.toFixed(2).padStart(7)} ms p99  ${path.label}`,
        );
      }
      return;
    }
    case "throughput":
      results.throughput = await streamThroughput(stack, plan.throughput, log);
      return;
    case "aggregate":
      results.aggregate = await aggregateThroughput(stack, plan.aggregate, log);
      return;
    case "cold-start":
      results.coldStart = await coldStart(stack, plan.coldStart, log);
      return;
    case "watchers":
      results.watchers = await watcherFanout(stack, plan.watchers, log);
      return;
    case "webhooks":
      results.webhooks = await webhookIngest(stack, plan.webhooks, log);
      return;
    case "peer":
      results.peer = await peerComparison(stack, plan.peer, log, options);
      return;
    case "feed":
      results.feed = await feedDelivery(stack, plan.feed, log);
      return;
  }
}

function selectScenarios(only: string | undefined): ScenarioName[] {
  if (only === undefined) return [...SCENARIOS];
  const names = only.split(",").map((name) => name.trim());
  const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new Error(`unknown scenario ${unknown.join(", ")}; choose from ${SCENARIOS.join(", ")}`);
  return SCENARIOS.filter((name) => names.includes(name));
}

function percent(value: number | undefined): string {
  return value === undefined ? "n/a" : `${(value * 100).toFixed(0)}%`;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`npm run bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
