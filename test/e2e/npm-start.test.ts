import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { webhookHeaders } from "../support/webhook-signing";

// `npm start` as a newcomer runs it, on a data directory of its own: the embedded
// PostgreSQL 17 cluster is created, served and stopped with a fast shutdown on Ctrl-C
// (no stale postmaster.pid), reused with its data on the next start, and stopped just
// as cleanly when the start process itself is killed. Settings given in the
// environment reach the Worker, and a configured token does not switch off the
// development token. This runs the embedded path whatever TEST_DATABASE_URL says.

const ROOT = new URL("../..", import.meta.url).pathname;
const WEBHOOK_SECRET = "whsec_c3RhcnQtdGVzdC13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5YWI=";
const READER_TOKEN = "npm-start-test-reader-token-0123456789";
const READY_TIMEOUT_MS = 90_000;

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  base: string;
  token: string;
}

const stateDir = await mkdtemp(join(tmpdir(), "glyph-npm-start-"));
// As root the server runs as the `postgres` user, which must be able to enter it.
await chmod(stateDir, 0o755);
const clusterDir = join(stateDir, "postgres");
const serverLog = join(stateDir, "postgres.log");
const started: Running[] = [];

afterAll(async () => {
  for (const run of started) {
    if (run.child.exitCode === null && run.child.pid !== undefined) {
      try {
        process.kill(-run.child.pid, "SIGINT");
      } catch {}
      await run.exited;
    }
  }
  await waitFor(() => !existsSync(join(clusterDir, "postmaster.pid")), 30_000);
  await rm(stateDir, { recursive: true, force: true });
}, 60_000);

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

async function npmStart(): Promise<Running> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["DATABASE_URL", "DATABASE_WS_PROXY", "TEST_DATABASE_URL", "NODE_OPTIONS"])
    delete env[name];
  // What `npm start` runs, in a process group of its own, as a terminal would have it.
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...env,
      PORT: String(port),
      GLYPH_DATA_DIR: stateDir,
      WEBHOOK_SECRETS: JSON.stringify({ partner: [WEBHOOK_SECRET] }),
      AUTH_TOKENS: JSON.stringify([
        { id: "reader", sha256: createHash("sha256").update(READER_TOKEN).digest("hex"), scopes: ["read"] },
      ]),
    },
  });
  let text = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const ready = await waitFor(() => /is ready on/.test(text) || child.exitCode !== null, READY_TIMEOUT_MS);
  if (!ready || child.exitCode !== null) throw new Error(`npm start did not get ready:\n${text}`);
  const token = /^token: (gst_\S+)$/m.exec(text)?.[1];
  if (token === undefined) throw new Error(`npm start printed no token:\n${text}`);
  const run = { child, output: () => text, exited, base: `http://127.0.0.1:${port}`, token };
  started.push(run);
  return run;
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

function fastShutdowns(): number {
  return (readFileSync(serverLog, "utf8").match(/received fast shutdown request/g) ?? []).length;
}

function postmasterPid(): number {
  return Number(readFileSync(join(clusterDir, "postmaster.pid"), "utf8").split("\n")[0]);
}

/** Whether anything still accepts connections on the port npm start served on. */
async function listening(base: string): Promise<boolean> {
  const { hostname, port } = new URL(base);
  return await new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const workflowStarted = {
  event: { type: "workflow_started", workflow_id: randomUUID(), config_version: "v1" },
};

it("npm start serves on a new embedded cluster, passes settings on, keeps both tokens, and stops the database cleanly on Ctrl-C, on restart and when killed", async () => {
  const stream = randomUUID();

  // First start: a new cluster.
  const first = await npmStart();
  expect(first.output()).toMatch(/embedded PostgreSQL 17 \(new cluster\)/);
  expect(first.output()).toMatch(/WEBHOOK_SECRETS from the environment/);
  // The printout points at the inspector, which npm start serves with nothing to build.
  expect(first.output()).toContain(`  ${first.base}/inspect\n`);
  const inspector = await fetch(`${first.base}/inspect/`);
  expect(inspector.status).toBe(200);
  expect(await inspector.text()).toContain('<script type="module" src="app.js"></script>');
  const append = await fetch(`${first.base}/streams/${stream}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${first.token}`, "content-type": "application/json" },
    body: JSON.stringify({ expected_version: "no_stream", events: [workflowStarted] }),
  });
  expect(append.status).toBe(201);
  // The configured read-only token works beside the development token, and is read-only.
  const read = await fetch(`${first.base}/streams/${stream}/state`, {
    headers: { authorization: `Bearer ${READER_TOKEN}` },
  });
  expect(read.status).toBe(200);
  const refused = await fetch(`${first.base}/streams/${stream}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${READER_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ events: [workflowStarted] }),
  });
  expect(refused.status).toBe(403);
  // WEBHOOK_SECRETS from the environment reached the Worker: a delivery signed with it lands.
  const webhookStream = randomUUID();
  const body = JSON.stringify({ stream_id: webhookStream, events: [workflowStarted] });
  const delivery = await fetch(`${first.base}/webhooks/partner`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(await webhookHeaders(WEBHOOK_SECRET, `msg_${randomUUID()}`, body)),
    },
    body,
  });
  expect(delivery.status).toBe(201);

  // Ctrl-C (SIGINT to the process group): a fast shutdown, no lock file left behind.
  const serverPid = postmasterPid();
  process.kill(-(first.child.pid ?? 0), "SIGINT");
  expect(await first.exited).toBe(130);
  expect(isAlive(serverPid)).toBe(false);
  expect(existsSync(join(clusterDir, "postmaster.pid"))).toBe(false);
  expect(fastShutdowns()).toBe(1);
  expect(await listening(first.base)).toBe(false);

  // Second start: the same cluster and its data.
  const second = await npmStart();
  expect(second.output()).toMatch(/embedded PostgreSQL 17, data in/);
  const state = await fetch(`${second.base}/streams/${stream}/state`, {
    headers: { authorization: `Bearer ${second.token}` },
  });
  expect(state.status).toBe(200);
  expect(((await state.json()) as { version: number }).version).toBe(1);

  // The start process killed outright: its database host notices and stops the server the same way.
  const secondServerPid = postmasterPid();
  process.kill(second.child.pid ?? 0, "SIGKILL");
  await second.exited;
  expect(await waitFor(() => !isAlive(secondServerPid), 30_000)).toBe(true);
  expect(existsSync(join(clusterDir, "postmaster.pid"))).toBe(false);
  expect(fastShutdowns()).toBe(2);
  // ... and the Worker is gone with it (no workerd left serving).
  expect(await listening(second.base)).toBe(false);
}, 240_000);
