import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Pool } from "@neondatabase/serverless";
import ws from "ws";
import { migrate } from "../../scripts/lib/migrations";
import { startLocalWorker } from "../../scripts/local/worker";
import { createPool } from "../../src/db/create-pool";
import { type DatabaseSettings, readDatabaseSettings } from "../../src/db/database-settings";
import { benchAuthTokens } from "./auth";
import { benchConnectionUrl } from "./database-activity";
import { startLeanWorker } from "./lean-worker";

// The local stack the benchmark drives, built like `npm start` builds it but with every
// part owned by this run: the database (DATABASE_URL, or a throwaway embedded PostgreSQL), the
// /sql endpoint the Worker queries over HTTP and the WebSocket-to-TCP bridge in a child
// process, the migrations, a Node-side pool on the
// product's own driver through that bridge, and the real Worker (wrangler.toml, built as
// `wrangler deploy` builds it) in workerd, run the leanest way (bench/lib/lean-worker.ts).
// npm start's runtime, wrangler's dev environment, is started beside it where section 1
// compares the two.

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DATABASE_HOST = fileURLToPath(new URL("./database-host.ts", import.meta.url));
/**
 * The smallest possible Worker, run in the same local runtime as the product: what it
 * costs per request is the runtime's own share of every request. Written to a temporary
 * directory so that wrangler does not pick up this project's wrangler.toml for it.
 */
const TRIVIAL_WORKER_SOURCE = 'export default { fetch() { return new Response("ok"); } };\n';
const RATE_LIMITED_WORKER_SOURCE =
  'export default { async fetch(request, env) { await env.LIMIT.limit({ key: "token:bench" }); return new Response("ok"); } };\n';
const LOCAL_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;
const START_TIMEOUT_MS = 90_000;

export type DatabaseKind = "server" | "embedded";

export interface DatabaseInfo {
  kind: DatabaseKind;
  /** `SELECT version()`. */
  version: string;
  /** The URL without a password. */
  url: string;
  settings: Record<string, string>;
}

export interface RunningWorker {
  /** workerd's socket that leads straight to the Worker. */
  url: URL;
  stop(): Promise<void>;
}

export interface Stack {
  readonly database: DatabaseInfo;
  /** Settings as the Worker gets them (DATABASE_HTTP_ENDPOINT = the /sql endpoint, DATABASE_WS_PROXY = the bridge). */
  readonly settings: DatabaseSettings;
  /** Node-side pool: the product's driver (@neondatabase/serverless + ws) through the same bridge. */
  readonly pool: Pool;
  readonly webhookSecret: string;
  /** The Worker's variables (database, tokens, webhook secret), for another runtime of it. */
  readonly workerVars: Record<string, string>;
  worker: RunningWorker;
  /** Stops the Worker (every actor with it) and starts a fresh workerd. */
  restartWorker(): Promise<void>;
  close(): Promise<void>;
}

export interface StackOptions {
  /** postgres:// URL of a server on this machine; absent: a throwaway embedded PostgreSQL. */
  databaseUrl: string | undefined;
  webhookSecret: string;
  log: (line: string) => void;
  /** Open the V8 inspector of the Worker's workerd on this port (a CPU profile); off by default. */
  inspectorPort?: number;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  if (options.databaseUrl !== undefined) {
    const host = new URL(options.databaseUrl).hostname;
    if (!LOCAL_HOSTS.test(host)) {
      throw new Error(
        `DATABASE_URL points at ${host}; the benchmark only drives a database on this machine.`,
      );
    }
  }
  const cleanups: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    options.log(
      options.databaseUrl ? "starting the bridge to DATABASE_URL …" : "starting the embedded PostgreSQL …",
    );
    const host = await startDatabaseHost(options.databaseUrl);
    cleanups.push(host.stop);
    const settings = readDatabaseSettings({
      DATABASE_URL: host.url,
      DATABASE_WS_PROXY: host.proxyUrl,
      DATABASE_HTTP_ENDPOINT: host.fetchEndpoint,
    });
    // Named (application_name), so that connection counts can leave the bench's own out.
    const pool = createPool(
      { ...settings, DATABASE_URL: benchConnectionUrl(settings.DATABASE_URL, "pool") },
      { max: 8, webSocketConstructor: ws, idleTimeoutMillis: 30_000 },
    );
    cleanups.push(() => pool.end());
    const report = await migrate(pool);
    if (report.applied.length > 0) options.log(`applied migrations: ${report.applied.join(", ")}`);
    const database = await describeDatabase(pool, host.kind, host.url);
    const vars = workerVars(settings, options.webhookSecret);
    options.log("starting the Worker (workerd) …");
    const startWorker = () =>
      startLeanWorker({ config: `${ROOT}wrangler.toml`, vars, inspectorPort: options.inspectorPort });
    let worker = await startWorker();
    const stack: Stack = {
      database,
      settings,
      pool,
      webhookSecret: options.webhookSecret,
      workerVars: vars,
      worker,
      restartWorker: async () => {
        await worker.stop();
        worker = await startWorker();
        stack.worker = worker;
      },
      close: async () => {
        await worker.stop().catch(() => undefined);
        await closeAll();
      },
    };
    return stack;
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function workerVars(settings: DatabaseSettings, webhookSecret: string): Record<string, string> {
  return {
    DATABASE_URL: settings.DATABASE_URL,
    DATABASE_WS_PROXY: settings.DATABASE_WS_PROXY ?? "",
    DATABASE_HTTP_ENDPOINT: settings.DATABASE_HTTP_ENDPOINT ?? "",
    AUTH_TOKENS: benchAuthTokens(),
    WEBHOOK_SECRETS: JSON.stringify({ bench: [webhookSecret] }),
    // A full replay of 100,000 events takes longer than the default 10 s (see docs/benchmarks.md).
    DATABASE_TIMEOUT_MS: "120000",
  };
}

interface DatabaseHost {
  url: string;
  proxyUrl: string;
  fetchEndpoint: string;
  kind: DatabaseKind;
  stop: () => Promise<void>;
}

/** Runs bench/lib/database-host.ts in a child process and waits for its one JSON line. */
async function startDatabaseHost(databaseUrl: string | undefined): Promise<DatabaseHost> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (databaseUrl === undefined) delete env.BENCH_DATABASE_URL;
  else env.BENCH_DATABASE_URL = databaseUrl;
  const child = spawn(process.execPath, ["--import", "tsx", DATABASE_HOST], {
    cwd: ROOT,
    env,
    stdio: ["pipe", "pipe", "inherit"],
  });
  child.stdin?.on("error", () => undefined);
  const stop = () => stopChild(child);
  try {
    const line = await firstLine(child, START_TIMEOUT_MS);
    const parsed: unknown = JSON.parse(line);
    if (!isHostLine(parsed)) throw new Error(`the database host said something unexpected: ${line}`);
    return { ...parsed, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function isHostLine(
  value: unknown,
): value is { url: string; proxyUrl: string; fetchEndpoint: string; kind: DatabaseKind } {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.url === "string" &&
    typeof record.proxyUrl === "string" &&
    typeof record.fetchEndpoint === "string" &&
    (record.kind === "server" || record.kind === "embedded")
  );
}

/** The first line a child process prints on stdout (its "ready" line). */
export function firstLine(
  child: ChildProcess,
  timeoutMs: number,
  what = "the database host",
): Promise<string> {
  return new Promise((resolve, reject) => {
    if (child.stdout === null) return reject(new Error(`${what} has no stdout`));
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      reject(new Error(`${what} did not start within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with code ${code}`));
    });
  });
}

/** Closes the child's stdin (its lifeline) and signals it; SIGKILL after 5 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stdin?.end();
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

async function describeDatabase(pool: Pool, kind: DatabaseKind, url: string): Promise<DatabaseInfo> {
  const version = String((await pool.query("SELECT version() AS v")).rows[0]?.v ?? "unknown");
  const settings: Record<string, string> = {};
  for (const name of [
    "max_connections",
    "shared_buffers",
    "fsync",
    "synchronous_commit",
    "shared_preload_libraries",
  ]) {
    try {
      const row = (await pool.query(`SELECT current_setting($1) AS v`, [name])).rows[0];
      settings[name] = String(row?.v ?? "");
    } catch {
      settings[name] = "n/a";
    }
  }
  const redacted = new URL(url);
  if (redacted.password) redacted.password = "***";
  return { kind, version, url: redacted.toString(), settings };
}

/** Where a Worker runs locally: the leanest way (the benchmark's), or as `npm start` runs it. */
export type LocalRuntime = "lean" | "wrangler-dev";

/**
 * A Worker that only answers "ok", in the same local runtime, to calibrate against: with
 * the product's static assets configured as the product has them (the Worker runs first).
 * With `rateLimited`, it first counts the request with a Rate Limiting binding as the
 * product does in production (one `limit()` call), so that the local binding's own cost
 * can be told apart.
 */
export async function startTrivialWorker(
  options: { rateLimited?: boolean; runtime?: LocalRuntime } = {},
): Promise<RunningWorker> {
  const dir = await mkdtemp(join(tmpdir(), "glyph-bench-trivial-"));
  const limited = options.rateLimited ?? false;
  await writeFile(join(dir, "worker.js"), limited ? RATE_LIMITED_WORKER_SOURCE : TRIVIAL_WORKER_SOURCE);
  await writeFile(
    join(dir, "wrangler.toml"),
    [
      `name = "bench-trivial${limited ? "-rate-limited" : ""}"`,
      'main = "worker.js"',
      'compatibility_date = "2026-11-01"',
      "[assets]",
      `directory = ${JSON.stringify(`${ROOT}public`)}`,
      'binding = "ASSETS"',
      "run_worker_first = true",
      'not_found_handling = "none"',
      ...(limited
        ? [
            "[[ratelimits]]",
            'name = "LIMIT"',
            'namespace_id = "1001"',
            "simple = { limit = 100000, period = 10 }",
          ]
        : []),
      "",
    ].join("\n"),
  );
  const config = join(dir, "wrangler.toml");
  try {
    const worker =
      options.runtime === "wrangler-dev"
        ? await startLocalWorker({ vars: {}, source: { config } })
        : await startLeanWorker({ config, vars: {} });
    return {
      url: worker.url,
      stop: async () => {
        await worker.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
