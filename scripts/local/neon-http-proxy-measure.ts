import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Client } from "pg";
import ws from "ws";
import { migrate } from "../lib/migrations";
import { openNodeDatabase } from "../lib/node-database";
import { startEmbeddedPostgres } from "./embedded-postgres";
import { holdLifeline } from "./lifeline";
import { startNeonHttpProxy } from "./neon-http-proxy";
import {
  type ActorMode,
  type MeasureSettings,
  measureLatency,
  PATHS,
  type PathName,
  percentile,
  runActor,
  STATEMENTS,
  type StatementName,
} from "./neon-http-proxy-measure-paths";
import { startWebSocketBridge } from "./websocket-bridge";
import { startLocalWorker } from "./worker";

// Measures the database paths for docs/decisions/database-path.md (issue 11, item 2):
// per-statement latency of neon() over HTTP vs a warm WebSocket Pool vs a fresh
// WebSocket connection, from Node and from inside workerd, and the server connections
// held during and after a burst of 2,000 distinct actors each doing one append.
//
//   npx node --import tsx scripts/local/neon-http-proxy-measure.ts [--quick] [--out file.json]
//   npx node --import tsx scripts/local/neon-http-proxy-measure.ts --latency-only --database-url postgres://…
//
// Without --database-url it starts a throwaway embedded PostgreSQL 17 with
// max_connections = 100 (the bursts exhaust it on purpose, so never point them at a
// shared server: --database-url implies --latency-only). The WebSocket bridge and the
// /sql proxy run in a child process of their own, as Neon's proxy is not in the
// client's process. Nothing here is a test; it prints numbers.

const SELF = fileURLToPath(import.meta.url);
const WORKER_ENTRY = fileURLToPath(new URL("./neon-http-proxy-measure-worker.ts", import.meta.url));
const SAMPLER_APPLICATION_NAME = "measure-sampler";

interface Options {
  quick: boolean;
  latencyOnly: boolean;
  databaseUrl: string | undefined;
  out: string;
}

function readOptions(argv: string[]): Options {
  const value = (name: string) => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const databaseUrl = value("--database-url");
  return {
    quick: argv.includes("--quick"),
    latencyOnly: argv.includes("--latency-only") || databaseUrl !== undefined,
    databaseUrl,
    out: value("--out") ?? "/tmp/database-path-measurements.json",
  };
}

// ---- the servers' process: bridge + /sql proxy in front of the target ----

async function serveBridgeAndProxy(target: { host: string; port: number }): Promise<void> {
  const bridge = await startWebSocketBridge({ target });
  const proxy = await startNeonHttpProxy({ target });
  process.stdout.write(
    `${JSON.stringify({ wsProxy: bridge.proxyUrl, fetchEndpoint: proxy.fetchEndpoint })}\n`,
  );
  holdLifeline(async () => {
    await proxy.close();
    await bridge.close();
  });
}

async function startServers(target: { host: string; port: number }) {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", SELF, "--servers", target.host, String(target.port)],
    {
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`the servers' process exited (${code})`)));
  });
  const addresses = JSON.parse(line) as { wsProxy: string; fetchEndpoint: string };
  return {
    ...addresses,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.stdin.end("stop\n");
      }),
  };
}

// ---- server connections, sampled ----

/**
 * total: client backends in pg_stat_activity other than the sampler's; proxy: those of
 * the /sql proxy; tcp: established TCP connections to the server's port other than the
 * sampler's, which also counts backends still authenticating (not yet in pg_stat_activity)
 * and is what max_connections runs out of.
 */
interface ConnectionCount {
  total: number;
  proxy: number;
  tcp: number;
}

interface ConnectionSampler {
  now(): Promise<ConnectionCount>;
  /** Samples every `everyMs` until stopped; answers the peak of each count. */
  watch(everyMs: number): { stop(): Promise<ConnectionCount> };
  close(): Promise<void>;
}

/** Established TCP connections whose local port is `port` (the server's side), from /proc/net/tcp. */
async function establishedTo(port: number): Promise<number> {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let count = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await readFile(file, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (local?.endsWith(hexPort) && state === "01") count++;
    }
  }
  return count;
}

async function connectionSampler(databaseUrl: string): Promise<ConnectionSampler> {
  const url = new URL(databaseUrl);
  const port = Number(url.port || 5432);
  url.searchParams.set("application_name", SAMPLER_APPLICATION_NAME);
  const client = new Client({ connectionString: url.toString() });
  client.on("error", () => undefined);
  await client.connect();
  const now = async () => {
    const result = await client.query<{ total: number; proxy: number }>(
      `SELECT count(*)::int AS total, (count(*) FILTER (WHERE application_name = 'neon-http-proxy'))::int AS proxy
         FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    );
    const tcp = (await establishedTo(port)) - 1;
    return { ...(result.rows[0] ?? { total: 0, proxy: 0 }), tcp };
  };
  return {
    now,
    watch(everyMs) {
      const peak = { total: 0, proxy: 0, tcp: 0 };
      let running = true;
      const loop = (async () => {
        while (running) {
          const sample = await now();
          peak.total = Math.max(peak.total, sample.total);
          peak.proxy = Math.max(peak.proxy, sample.proxy);
          peak.tcp = Math.max(peak.tcp, sample.tcp);
          await sleep(everyMs);
        }
      })();
      return {
        stop: async () => {
          running = false;
          await loop;
          return peak;
        },
      };
    },
    close: () => client.end(),
  };
}

// ---- latency ----

interface LatencyRow {
  runtime: "node" | "workerd";
  path: PathName;
  statement: StatementName;
  count: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
}

function summarise(
  runtime: LatencyRow["runtime"],
  path: PathName,
  statement: StatementName,
  samples: number[],
): LatencyRow {
  const mean = samples.reduce((sum, x) => sum + x, 0) / samples.length;
  return {
    runtime,
    path,
    statement,
    count: samples.length,
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    mean,
  };
}

/** Rounds interleave the paths, so that a busy moment on the shared machine hits all of them alike. */
async function latencyInNode(
  settings: MeasureSettings,
  counts: Record<PathName, number>,
  rounds: number,
): Promise<LatencyRow[]> {
  const rows: LatencyRow[] = [];
  for (const statement of STATEMENTS) {
    const samples = new Map<PathName, number[]>(PATHS.map((path) => [path, []]));
    for (let round = 0; round < rounds; round++) {
      for (const path of PATHS) {
        const got = await measureLatency({
          settings,
          path,
          statement,
          count: Math.ceil(counts[path] / rounds),
          warmup: round === 0 ? 20 : 2,
          now: () => performance.now(),
          webSocketConstructor: ws,
        });
        samples.get(path)?.push(...got);
      }
    }
    for (const path of PATHS) rows.push(summarise("node", path, statement, samples.get(path) ?? []));
  }
  return rows;
}

async function latencyInWorkerd(
  workerUrl: URL,
  counts: Record<PathName, number>,
  rounds: number,
): Promise<LatencyRow[]> {
  const rows: LatencyRow[] = [];
  for (const statement of STATEMENTS) {
    const samples = new Map<PathName, number[]>(PATHS.map((path) => [path, []]));
    for (let round = 0; PATHS.some((path) => (samples.get(path)?.length ?? 0) < counts[path]); round++) {
      for (const path of PATHS) {
        const remaining = counts[path] - (samples.get(path)?.length ?? 0);
        if (remaining <= 0) continue;
        // At most 100 statements per request: each is a subrequest of that request.
        const chunk = Math.min(remaining, 100, Math.ceil(counts[path] / rounds));
        const url = new URL("/latency", workerUrl);
        url.search = new URLSearchParams({
          path,
          statement,
          count: String(chunk),
          warmup: round === 0 ? "20" : "2",
        }).toString();
        const response = await fetch(url);
        if (!response.ok) throw new Error(`workerd /latency ${path} ${statement}: ${await response.text()}`);
        samples.get(path)?.push(...((await response.json()) as { samples: number[] }).samples);
      }
    }
    for (const path of PATHS) rows.push(summarise("workerd", path, statement, samples.get(path) ?? []));
  }
  return rows;
}

// ---- the burst of distinct actors ----

interface BurstRow {
  runtime: "node" | "workerd";
  mode: ActorMode;
  idleMs: number;
  actors: number;
  inFlight: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  seconds: number;
  actorP50: number;
  actorP99: number;
  peak: ConnectionCount;
  /** Server connections at the end of the burst, a second later, and the idle timeout after that. */
  after: { atEnd: ConnectionCount; plus1s: ConnectionCount; plusIdle: ConnectionCount };
}

async function burst(options: {
  runtime: BurstRow["runtime"];
  mode: ActorMode;
  idleMs: number;
  actors: number;
  inFlight: number;
  sampler: ConnectionSampler;
  act: () => Promise<{ ok: boolean; ms: number; error?: string }>;
}): Promise<BurstRow> {
  const { runtime, mode, idleMs, actors, inFlight, sampler, act } = options;
  await waitForQuiet(sampler, 30_000);
  const watching = sampler.watch(10);
  const started = performance.now();
  const outcomes: { ok: boolean; ms: number; error?: string }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < actors) {
        next++;
        outcomes.push(await act());
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const sampled = await watching.stop();
  const atEnd = await sampler.now();
  // A busy event loop (the Node runs share it with the actors) can starve the sampler: the end counts too.
  const peak = {
    total: Math.max(sampled.total, atEnd.total),
    proxy: Math.max(sampled.proxy, atEnd.proxy),
    tcp: Math.max(sampled.tcp, atEnd.tcp),
  };
  await sleep(1_000);
  const plus1s = await sampler.now();
  await sleep(idleMs);
  const plusIdle = await sampler.now();
  const errors: Record<string, number> = {};
  for (const outcome of outcomes) {
    if (!outcome.ok) errors[outcome.error ?? "?"] = (errors[outcome.error ?? "?"] ?? 0) + 1;
  }
  const times = outcomes.map((outcome) => outcome.ms);
  const row: BurstRow = {
    runtime,
    mode,
    idleMs,
    actors,
    inFlight,
    ok: outcomes.filter((outcome) => outcome.ok).length,
    failed: outcomes.filter((outcome) => !outcome.ok).length,
    errors,
    seconds,
    actorP50: percentile(times, 50),
    actorP99: percentile(times, 99),
    peak,
    after: { atEnd, plus1s, plusIdle },
  };
  process.stderr.write(`burst ${JSON.stringify(row)}\n`);
  return row;
}

async function waitForQuiet(sampler: ConnectionSampler, limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    const count = await sampler.now();
    if (count.total === 0 && count.tcp === 0) return;
    await sleep(250);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---- main ----

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  // A fresh connection costs tens of milliseconds here (SCRAM in JavaScript): fewer of those.
  const counts: Record<PathName, number> = options.quick
    ? { http: 100, "ws-warm": 100, "ws-fresh": 50 }
    : { http: 1000, "ws-warm": 1000, "ws-fresh": 300 };
  const rounds = options.quick ? 2 : 5;
  const actors = options.quick ? 300 : 2000;
  const inFlight = 64;
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "?",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadBefore: loadavg(),
  };

  const embedded =
    options.databaseUrl === undefined
      ? await startEmbeddedPostgres({ settings: { max_connections: "100" } })
      : undefined;
  const databaseUrl = options.databaseUrl ?? (embedded?.url as string);
  const target = new URL(databaseUrl);
  const stops: (() => Promise<void>)[] = [async () => embedded?.close()];
  try {
    const database = await openNodeDatabase({ DATABASE_URL: databaseUrl }, 1);
    let server: { version: string; maxConnections: string };
    try {
      await migrate(database.pool);
      const info = await database.pool.query(
        "SELECT version() AS version, current_setting('max_connections') AS max",
      );
      const row = info.rows[0] as { version: string; max: string };
      server = { version: row.version, maxConnections: row.max };
    } finally {
      await database.close();
    }
    const servers = await startServers({ host: target.hostname, port: Number(target.port || 5432) });
    stops.unshift(servers.stop);
    const settings: MeasureSettings = {
      DATABASE_URL: databaseUrl,
      DATABASE_WS_PROXY: servers.wsProxy,
      DATABASE_HTTP_ENDPOINT: servers.fetchEndpoint,
    };
    process.stderr.write(`server: ${server.version} (max_connections ${server.maxConnections})\n`);

    const latency = await latencyInNode(settings, counts, rounds);
    process.stderr.write(`node latency done\n`);

    // wrangler looks for a wrangler.toml upwards from the entrypoint and would find the
    // product's (its Durable Object class): so the entrypoint is a one-line re-export
    // in a temporary directory.
    const entryDir = await mkdtemp(join(tmpdir(), "measure-database-path-"));
    stops.push(() => rm(entryDir, { recursive: true, force: true }));
    const entrypoint = join(entryDir, "worker.ts");
    await writeFile(entrypoint, `export { default } from ${JSON.stringify(WORKER_ENTRY)};\n`);
    const worker = await startLocalWorker({
      vars: { ...settings },
      source: { name: "measure-database-path", entrypoint, compatibilityDate: "2026-11-01" },
    });
    stops.unshift(worker.stop);
    const clock = ((await (await fetch(new URL("/clock", worker.url))).json()) as { readings: number[] })
      .readings;
    latency.push(...(await latencyInWorkerd(worker.url, counts, rounds)));
    process.stderr.write(`workerd latency done\n`);

    const bursts: BurstRow[] = [];
    if (!options.latencyOnly) {
      const sampler = await connectionSampler(databaseUrl);
      try {
        const modes: { mode: ActorMode; idleMs: number }[] = [
          { mode: "http", idleMs: 10_000 },
          { mode: "ws-fresh", idleMs: 0 },
          { mode: "ws-held", idleMs: 1_000 },
          { mode: "ws-held", idleMs: 10_000 },
        ];
        for (const { mode, idleMs } of modes) {
          bursts.push(
            await burst({
              runtime: "node",
              mode,
              idleMs,
              actors,
              inFlight,
              sampler,
              act: () =>
                runActor({ settings, mode, idleMs, now: () => performance.now(), webSocketConstructor: ws }),
            }),
          );
          bursts.push(
            await burst({
              runtime: "workerd",
              mode,
              idleMs,
              actors,
              inFlight,
              sampler,
              act: async () => {
                const url = new URL("/actor", worker.url);
                url.search = new URLSearchParams({ mode, idle: String(idleMs) }).toString();
                try {
                  const response = await fetch(url);
                  if (!response.ok) return { ok: false, ms: 0, error: `HTTP ${response.status}` };
                  return (await response.json()) as { ok: boolean; ms: number; error?: string };
                } catch (error) {
                  return { ok: false, ms: 0, error: (error as Error).message };
                }
              },
            }),
          );
        }
      } finally {
        await sampler.close();
      }
    }

    const results = {
      at: new Date().toISOString(),
      machine: { ...machine, loadAfter: loadavg() },
      server,
      databaseKind: embedded ? "embedded (throwaway)" : "given",
      workerdClockReadings: clock,
      latency,
      bursts,
    };
    await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
    printSummary(results.latency, bursts);
    process.stderr.write(`written to ${options.out}\n`);
  } finally {
    for (const stop of stops)
      await stop().catch((error: unknown) => process.stderr.write(`${String(error)}\n`));
  }
}

function printSummary(latency: LatencyRow[], bursts: BurstRow[]): void {
  const ms = (x: number) => x.toFixed(2);
  const lines = [
    "| runtime | statement | path | n | p50 ms | p90 ms | p99 ms | mean ms |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const row of latency) {
    lines.push(
      `| ${row.runtime} | ${row.statement} | ${row.path} | ${row.count} | ${ms(row.p50)} | ${ms(row.p90)} | ${ms(row.p99)} | ${ms(row.mean)} |`,
    );
  }
  if (bursts.length > 0) {
    lines.push(
      "",
      "| runtime | mode | idle ms | ok | failed | s | actor p50 | p99 | peak backends (proxy's) / tcp | end | +1 s | +idle+1 s |",
    );
    lines.push("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const row of bursts) {
      const c = (x: ConnectionCount) => `${x.total} (${x.proxy}) / ${x.tcp}`;
      lines.push(
        `| ${row.runtime} | ${row.mode} | ${row.idleMs} | ${row.ok} | ${row.failed} | ${row.seconds.toFixed(1)} | ${ms(row.actorP50)} | ${ms(row.actorP99)} | ${c(row.peak)} | ${c(row.after.atEnd)} | ${c(row.after.plus1s)} | ${c(row.after.plusIdle)} |`,
      );
    }
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

if (process.argv[2] === "--servers") {
  await serveBridgeAndProxy({ host: process.argv[3] ?? "127.0.0.1", port: Number(process.argv[4]) });
} else {
  await main();
  process.exit(0);
}
