import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { benchAuthTokens } from "./auth";
import { registerPeerProcess } from "./cpu";
import type { Stack } from "./stack";
import { firstLine, stopChild } from "./stack";

// The peer (bench/peer/emmett-server.ts) as the bench runs it: a database of its own on
// the server glyph-streams uses (created here, dropped at the end), and the server in a
// child process of its own, so that its event loop is not the load generator's and its
// CPU can be read from /proc.

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SERVER = fileURLToPath(new URL("../peer/emmett-server.ts", import.meta.url));
const START_TIMEOUT_MS = 60_000;
/** The peer's database, beside glyph-streams' on the same server. */
export const PEER_DATABASE = "glyph_bench_peer";

export interface RunningPeer {
  url: URL;
  /** The peer's database name. */
  database: string;
  pid: number;
  /** Statements its driver has sent so far (counted in its process). */
  statements(): Promise<number>;
  /** Stops the server and, unless kept, drops its database. */
  stop(options?: { keepDatabase?: boolean }): Promise<void>;
}

export async function startPeer(stack: Stack): Promise<RunningPeer> {
  // A database left by an interrupted run is dropped first: every run starts empty.
  await stack.pool.query(`DROP DATABASE IF EXISTS ${PEER_DATABASE} WITH (FORCE)`);
  await stack.pool.query(`CREATE DATABASE ${PEER_DATABASE}`);
  const url = new URL(stack.settings.DATABASE_URL);
  url.pathname = `/${PEER_DATABASE}`;
  const child = spawn(process.execPath, ["--import", "tsx", SERVER], {
    cwd: ROOT,
    env: { ...process.env, PEER_DATABASE_URL: url.toString(), AUTH_TOKENS: benchAuthTokens() },
    stdio: ["pipe", "pipe", "inherit"],
  });
  child.stdin?.on("error", () => undefined);
  const dropDatabase = () => stack.pool.query(`DROP DATABASE IF EXISTS ${PEER_DATABASE} WITH (FORCE)`);
  try {
    const line = await firstLine(child, START_TIMEOUT_MS, "the peer (Emmett)");
    const parsed = JSON.parse(line) as { url?: unknown };
    if (typeof parsed.url !== "string") throw new Error(`the peer said something unexpected: ${line}`);
    if (child.pid === undefined) throw new Error("the peer has no process id");
    registerPeerProcess(child.pid);
    const base = new URL(parsed.url);
    return {
      url: base,
      database: PEER_DATABASE,
      pid: child.pid,
      statements: async () => {
        const response = await fetch(new URL("/_peer/stats", base));
        const body = (await response.json()) as { statements?: unknown };
        return Number(body.statements);
      },
      stop: async (options = {}) => {
        await stopChild(child);
        if (!options.keepDatabase) await dropDatabase();
      },
    };
  } catch (error) {
    await stopChild(child);
    await dropDatabase().catch(() => undefined);
    throw error;
  }
}
