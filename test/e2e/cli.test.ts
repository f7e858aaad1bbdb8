import { execFile, spawn } from "node:child_process";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { GlyphClient } from "../../client/index";
import { openTestPool } from "../support/database";
import { TEST_TOKENS } from "../support/test-tokens";
import { GLYPH, type GlyphRun, runGlyph } from "./glyph-cli";
import { type RunningWorker, startWorker } from "./worker-harness";

// The `glyph` binary (package.json "bin") run as a child process against the real Worker (issue 13).

const pool = openTestPool(2);
let worker: RunningWorker;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  worker = await startWorker(inject("databaseWsProxy"));
  env = {
    ...process.env,
    GLYPH_URL: worker.url.toString(),
    GLYPH_TOKEN: TEST_TOKENS.admin,
    DATABASE_URL: inject("databaseUrl"),
    DATABASE_WS_PROXY: inject("databaseWsProxy"),
  };
});
afterAll(async () => {
  await worker.stop();
  await pool.end();
});

const glyph = (args: string[], input?: string, environment: NodeJS.ProcessEnv = env): Promise<GlyphRun> =>
  runGlyph(args, environment, input);

const started = { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" };

it("append, state, events and ls, for people and with --json", async () => {
  const streamId = crypto.randomUUID();
  const type = `cli${crypto.randomUUID().slice(0, 8)}`;
  const first = await glyph([
    "append",
    streamId,
    JSON.stringify(started),
    "--expected",
    "no_stream",
    "--type",
    type,
    "--json",
  ]);
  expect(first).toMatchObject({ code: 0, stderr: "" });
  expect(JSON.parse(first.stdout)).toMatchObject({ stream_id: streamId, versions: [1], stream_type: type });

  const events = Array.from({ length: 3 }, (_, i) => ({ type: "context_updated", key: "k", value: i }));
  const second = await glyph(["append", streamId, "-", "--expected", "1"], JSON.stringify(events));
  expect(second.code).toBe(0);
  expect(second.stdout).toContain("appended versions 2, 3, 4");
  const another = crypto.randomUUID();
  const single = await glyph(["append", another, JSON.stringify(started)]);
  expect(single.code).toBe(0);
  expect(single.stdout).toContain(`appended version 1 to ${another}`);

  const state = await glyph(["state", streamId, "--at", "2", "--json"]);
  expect(state.code).toBe(0);
  expect(JSON.parse(state.stdout)).toMatchObject({
    version: 2,
    state: { status: "running", context: { k: 0 } },
  });
  const table = await glyph(["state", streamId]);
  expect(table.stdout).toContain("at version 4: running");

  const lines = (await glyph(["events", streamId, "--json"])).stdout.trim().split("\n");
  expect(lines.map((line) => (JSON.parse(line) as { version: number }).version)).toEqual([1, 2, 3, 4]);

  const listed = await glyph(["ls", "--type", type, "--status", "running", "--json"]);
  expect(listed.code).toBe(0);
  expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ stream_id: streamId, version: 4 })]);
  const people = await glyph(["ls", "--type", type]);
  expect(people.stdout.split("\n")[0]).toMatch(/^stream\s+type\s+status\s+version\s+updated$/);
});

it("errors are one sentence on stderr with a non-zero exit", async () => {
  const streamId = crypto.randomUUID();
  expect((await glyph(["append", streamId, JSON.stringify(started)])).code).toBe(0);
  const conflict = await glyph(["append", streamId, JSON.stringify(started), "--expected", "7"]);
  expect(conflict.code).toBe(1);
  expect(conflict.stderr.trim().split("\n")).toHaveLength(1);
  expect(conflict.stderr).toMatch(/^glyph: .*version/);
  const usage = await glyph(["state"]);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toBe("glyph: glyph state needs a stream id.\n");
  const denied = await glyph(["state", streamId, "--token", "not-a-token-at-all-0123456789abcdef"]);
  expect(denied.code).toBe(1);
  expect(denied.stderr).toMatch(/^glyph: /);
});

it("verify exits 0 on a sound stream and 1 when a snapshot is corrupted", async () => {
  const streamId = crypto.randomUUID();
  const events = [
    started,
    ...Array.from({ length: 54 }, (_, i) => ({ type: "context_updated", key: "k", value: i })),
  ];
  expect((await glyph(["append", streamId, "-"], JSON.stringify(events))).code).toBe(0);
  const snapshots = await pool.query(
    "SELECT version::int AS version FROM workflow_snapshots WHERE stream_id = $1",
    [streamId],
  );
  // An append that passes a multiple of 50 leaves a snapshot at its last version.
  expect(snapshots.rows).toEqual([{ version: 55 }]);

  const sound = await glyph(["verify", "--streams", streamId, "--json"]);
  expect(sound).toMatchObject({ code: 0, stderr: "" });
  expect(JSON.parse(sound.stdout)).toMatchObject({ streams: 1, events: 55, snapshots: 1, mismatches: [] });

  await pool.query(
    `UPDATE workflow_snapshots SET state = jsonb_set(state, '{context,k}', '"corrupt"') WHERE stream_id = $1`,
    [streamId],
  );
  const corrupt = await glyph(["verify", "--streams", streamId]);
  expect(corrupt.code).toBe(1);
  expect(corrupt.stdout).toContain("1 mismatches");
  expect(corrupt.stdout).toMatch(new RegExp(`${streamId}\\s+55\\s+the snapshot differs`));
});

it("tail follows a stream live until interrupted", async () => {
  const streamId = crypto.randomUUID();
  expect((await glyph(["append", streamId, JSON.stringify(started)])).code).toBe(0);
  const child = spawn(process.execPath, [GLYPH, "tail", streamId, "--json"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const waitForLines = async (count: number) => {
    const deadline = Date.now() + 30_000;
    while (output.trim().split("\n").filter(Boolean).length < count && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await waitForLines(1);
  const live = JSON.stringify({ type: "context_updated", key: "live", value: 1 });
  expect((await glyph(["append", streamId, live])).code).toBe(0);
  await waitForLines(2);
  child.kill("SIGINT");
  expect(await exited).toBe(0);
  expect(
    output
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { version: number }).version),
  ).toEqual([1, 2]);
});

it("token prints a token and its AUTH_TOKENS entry; a bad scope is refused", async () => {
  const made = await glyph(["token", "--id", "ci", "--scopes", "read,append", "--json"]);
  expect(made.code).toBe(0);
  expect(JSON.parse(made.stdout)).toMatchObject({
    token: expect.stringMatching(/^gst_/),
    entry: { id: "ci", scopes: ["read", "append"] },
  });
  const bad = await glyph(["token", "--scopes", "everything"]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/^glyph: Cannot make that token/);
});

it("feed prints the global feed's events of a stream type, with their checkpoints", async () => {
  const type = `clifeed${crypto.randomUUID().slice(0, 8)}`;
  const streamId = crypto.randomUUID();
  expect((await glyph(["append", streamId, JSON.stringify(started), "--type", type])).code).toBe(0);
  const feed = await glyph(["feed", "--type", type, "--json"]);
  expect(feed.code).toBe(0);
  const events = feed.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { stream_id: string; version: number; checkpoint: string });
  expect(events).toEqual([
    expect.objectContaining({ stream_id: streamId, version: 1, checkpoint: expect.any(String) }),
  ]);
});

it("verify without DATABASE_URL replays over the API and compares with the head and the served state", async () => {
  const streamId = crypto.randomUUID();
  const events = [
    started,
    ...Array.from({ length: 59 }, (_, i) => ({ type: "context_updated", key: "k", value: i })),
  ];
  expect((await glyph(["append", streamId, "-"], JSON.stringify(events))).code).toBe(0);
  const { DATABASE_URL: _url, DATABASE_WS_PROXY: _proxy, ...apiOnly } = env;
  const checked = await glyph(["verify", "--streams", streamId, "--json"], undefined, apiOnly);
  expect(checked).toMatchObject({ code: 0, stderr: "" });
  expect(JSON.parse(checked.stdout)).toMatchObject({ streams: 1, events: 60, snapshots: 0, mismatches: [] });
});

it("migrate on an up-to-date database applies nothing and says so", async () => {
  const migrated = await glyph(["migrate", "--json"]);
  expect(migrated).toMatchObject({ code: 0, stderr: "" });
  const report = JSON.parse(migrated.stdout) as { applied: string[]; alreadyApplied: string[] };
  expect(report.applied).toEqual([]);
  expect(report.alreadyApplied.length).toBeGreaterThan(0);
});

/** Whether util-linux script(1) is here to give a child a pseudo-terminal. */
const hasScript = await new Promise<boolean>((resolve) =>
  execFile("script", ["--version"], (error, stdout) => resolve(!error && stdout.includes("util-linux"))),
);

it.skipIf(!hasScript)(
  "verify draws a progress bar with ETA on a terminal (a pseudo-terminal from script), and none when piped",
  async () => {
    const client = new GlyphClient({ url: worker.url, token: TEST_TOKENS.admin });
    const streams = Array.from({ length: 3 }, () => crypto.randomUUID());
    for (const id of streams) {
      await client.append(id, [
        { ...started, type: "workflow_started" },
        { type: "context_updated", key: "k", value: 1 },
      ]);
    }
    const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
    const command = [process.execPath, GLYPH, "verify", "--streams", streams.join(",")].map(quote).join(" ");
    const terminal = await new Promise<{ code: number; output: string }>((resolve) =>
      execFile("script", ["-qfec", command, "/dev/null"], { env, timeout: 60_000 }, (error, stdout) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: stdout }),
      ),
    );
    expect(terminal.code, terminal.output).toBe(0);
    // The bar is redrawn in place (\r) at each stream: 0/3 with no estimate yet, then 1/3, 2/3, 3/3 with one.
    const bars = [...terminal.output.matchAll(/\rverify \[(#*)(\.*)\] (\d+)\/3 {2}ETA (\?|\d+s)/g)];
    expect(bars.map((bar) => Number(bar[3]))).toEqual([0, 1, 2, 3]);
    expect(bars.map((bar) => bar[1]?.length)).toEqual([0, 10, 20, 30]);
    expect(bars.every((bar) => (bar[1]?.length ?? 0) + (bar[2]?.length ?? 0) === 30)).toBe(true);
    expect(bars[0]?.[4]).toBe("?");
    expect(bars.slice(1).every((bar) => /^\d+s$/.test(bar[4] ?? ""))).toBe(true);
    expect(terminal.output).toContain("3 streams, 6 events, 0 snapshots replayed: 0 mismatches");

    const piped = await glyph(["verify", "--streams", streams.join(",")]);
    expect(piped).toMatchObject({ code: 0, stderr: "" });
    expect(piped.stdout).toBe("3 streams, 6 events, 0 snapshots replayed: 0 mismatches\n");
  },
);
