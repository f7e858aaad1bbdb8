import { randomUUID } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { holdLifeline } from "./lifeline";
import { type LocalDatabase, type LocalStack, startLocalStack } from "./stack";
import { accessTokens, readDevVars, StartError, workerSettings } from "./start-settings";

// The process that serves `npm start` (scripts/start.ts starts it in a process group of
// its own and holds its lifeline): it works out the configuration, starts the local
// stack (scripts/local/stack.ts) on 127.0.0.1:$PORT, prints the token and a first curl,
// and stops the stack, the database last, when its lifeline says so.

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const HOST = "127.0.0.1";
/** Local state: .data/, or GLYPH_DATA_DIR (the tests run npm start on a directory of their own). */
const STATE_DIR = process.env.GLYPH_DATA_DIR || join(ROOT, ".data");
const DATA_DIR = join(STATE_DIR, "postgres");
const DATABASE_LOG = join(STATE_DIR, "postgres.log");
const LOCK_FILE = join(STATE_DIR, "npm-start.lock");
/** Where the embedded database lived before it was a real PostgreSQL server. */
const OLD_PGLITE_DIR = join(STATE_DIR, "pglite");

let stack: LocalStack | undefined;
let unlock: (() => void) | undefined;
const startup = serve().catch((error: unknown) => {
  console.error(`npm start: ${describe(error)}`);
  unlock?.();
  process.exit(1);
});
holdLifeline(async () => {
  await startup;
  await stack?.close();
  unlock?.();
});

async function serve(): Promise<void> {
  const port = readPort();
  await assertPortFree(port);
  const devVars = readDevVars(ROOT);
  const access = accessTokens(process.env, devVars);
  const passed = workerSettings(process.env, devVars);

  let database: LocalDatabase;
  const given = process.env.DATABASE_URL;
  if (given) {
    const url = new URL(readDatabaseSettings(process.env).DATABASE_URL);
    if (/^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(url.hostname)) await probeTcp(url);
    database = { url: given };
    console.log(`Using the database at ${redact(given)} (DATABASE_URL) …`);
  } else {
    unlock = lockDataDir();
    if (existsSync(OLD_PGLITE_DIR)) {
      console.warn(
        `note: ${shown(OLD_PGLITE_DIR)} holds data of the earlier embedded database (PGlite), which is no longer read; delete it when you no longer need it.`,
      );
    }
    console.log(`Starting the embedded PostgreSQL in ${shown(DATA_DIR)} …`);
    database = { embedded: { dataDir: DATA_DIR, logFile: DATABASE_LOG } };
  }

  stack = await startLocalStack(
    {
      database,
      worker: {
        vars: { ...passed.vars, AUTH_TOKENS: access.authTokens },
        port,
        logLevel: "info",
        watch: true,
      },
    },
    (step) => {
      if (step === "worker") console.log(`Starting the Worker on http://${HOST}:${port} …`);
    },
  );
  const { embedded, bridge, migrations } = stack;
  if (embedded) {
    console.log(
      `database    embedded PostgreSQL 17${embedded.initialised ? " (new cluster)" : ""}, data in ` +
        `${shown(DATA_DIR)}, served on ${redact(embedded.url)}, log in ${shown(embedded.logFile)}`,
    );
  } else {
    console.log(`database    ${redact(stack.settings.DATABASE_URL)} (DATABASE_URL)`);
  }
  if (bridge) console.log(`bridge      ${bridge.proxyUrl} (DATABASE_WS_PROXY)`);
  for (const name of migrations.applied) console.log(`migration   applied ${name}`);
  console.log(
    `migrations  ${migrations.applied.length} applied, ${migrations.alreadyApplied.length} already applied`,
  );
  console.log(`access      ${access.description}`);
  for (const line of passed.lines) console.log(`setting     ${line}`);
  printReady(stack.worker.proxyUrl, access.token);
}

function readPort(): number {
  const raw = process.env.PORT;
  if (raw === undefined || raw === "") return 8787;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new StartError(`PORT must be a TCP port number (1-65535), not "${raw}".`);
  }
  return port;
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        new StartError(
          error.code === "EADDRINUSE"
            ? `port ${port} on ${HOST} is already in use; stop whatever holds it or choose another: PORT=${port + 1} npm start`
            : `cannot listen on ${HOST}:${port}: ${error.message}`,
        ),
      );
    });
    server.listen(port, HOST, () => server.close(() => resolve()));
  });
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

/**
 * One `npm start` per data directory. PostgreSQL would refuse a second server on the
 * cluster anyway; the lock says why in a sentence, and tells a postmaster left running
 * by a killed run (which the database host then stops) from one a live run owns.
 * Returns what removes the lock.
 */
function lockDataDir(): () => void {
  mkdirSync(STATE_DIR, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(LOCK_FILE, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(LOCK_FILE, { force: true });
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

function printReady(base: URL, token: string): void {
  const origin = base.origin;
  const stream = randomUUID();
  const body = JSON.stringify({
    events: [{ event: { type: "workflow_started", workflow_id: randomUUID(), config_version: "v1" } }],
  });
  const auth = `-H 'authorization: Bearer ${token}'`;
  console.log(
    [
      "",
      `glyph-streams is ready on ${origin}`,
      `token: ${token}`,
      "",
      "Append a first event to a new stream:",
      `  curl -X POST ${origin}/streams/${stream}/events ${auth} -H 'content-type: application/json' -d '${body}'`,
      "Read its state back:",
      `  curl ${origin}/streams/${stream}/state ${auth}`,
      "Or look around in the inspector (paste the token):",
      `  ${origin}/inspect`,
      "",
      "Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
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

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describe(error.errors[0]);
  // The Neon driver rejects with a WebSocket ErrorEvent (not an Error) when it cannot connect.
  const message =
    typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
      ? error.message || error.constructor.name
      : String(error);
  return message.split("\n")[0] ?? message;
}
