import { afterAll, beforeAll, expect, inject, it } from "vitest";
import type { DeadLetter, PutSubscriptionResult, Subscription } from "../../client/index";
import { TEST_TOKENS } from "../support/test-tokens";
import { WebhookReceiver } from "../support/webhook-receiver";
import { type GlyphRun, runGlyph } from "./glyph-cli";
import { type RunningWorker, startWorker } from "./worker-harness";

// `glyph subs …` (issue 13) run as a child process against the real Worker, which delivers
// to a real HTTP receiver in this process: tables for people, --json for scripts, one
// sentence and a non-zero exit for errors. The Worker gives up on a delivery after 2 s of
// failures, so a dead letter is made in seconds.

let worker: RunningWorker;
let env: NodeJS.ProcessEnv;
const receiver = new WebhookReceiver();
beforeAll(async () => {
  worker = await startWorker(inject("databaseWsProxy"), {
    FEED_POLL_INTERVAL_MS: "500",
    SUBSCRIPTION_DEAD_LETTER_AFTER_MS: "2000",
  });
  await receiver.start();
  const { DATABASE_URL: _url, ...rest } = process.env;
  env = { ...rest, GLYPH_URL: worker.url.toString(), GLYPH_TOKEN: TEST_TOKENS.admin };
});
afterAll(async () => {
  await receiver.stop();
  await worker.stop();
});

const glyph = (...args: string[]): Promise<GlyphRun> => runGlyph(args, env);
const json = <T>(run: GlyphRun): T => {
  expect(run, run.stderr).toMatchObject({ code: 0, stderr: "" });
  return JSON.parse(run.stdout) as T;
};
const started = () =>
  JSON.stringify({ type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" });
const context = (key: string) => ({ type: "context_updated", key, value: 1 });
const takenBy = (name: string) =>
  receiver.deliveries.filter((d) => d.subscription === name && d.status >= 200 && d.status < 300);

it("subs put, ls, get, pause, resume, replay and rm, for people and with --json", async () => {
  const name = `cli-${crypto.randomUUID().slice(0, 8)}`;
  const type = `clisub_${crypto.randomUUID().slice(0, 8)}`;
  const created = json<PutSubscriptionResult>(
    await glyph("subs", "put", name, receiver.url, "--type", type, "--json"),
  );
  expect(created).toMatchObject({ created: true, name, stream_types: [type], status: "active" });
  if (!created.created) throw new Error("not created");
  receiver.secret = created.secret;
  const changed = await glyph("subscriptions", "put", name, receiver.url, "--type", type, "--batch", "1");
  expect(changed).toMatchObject({ code: 0, stderr: "" });
  expect(changed.stdout).toBe(`changed subscription ${name}: active, lag 0 events, 0 s, 0 dead letters\n`);
  expect(changed.stdout).not.toContain("whsec_");

  const streamId = crypto.randomUUID();
  expect((await runGlyph(["append", streamId, started(), "--type", type], env)).code).toBe(0);
  await receiver.waitUntil(() => takenBy(name).length >= 1);
  expect(takenBy(name)[0]?.signed).toBe(true);

  const table = await glyph("subs", "ls");
  expect(table.code).toBe(0);
  const lines = table.stdout.trimEnd().split("\n");
  expect(lines[0]).toMatch(/^name\s+status\s+lag\s+dead letters\s+last delivery\s+url$/);
  expect(lines.find((line) => line.startsWith(`${name} `))).toMatch(
    new RegExp(
      `^${name}\\s+active\\s+0 events, 0 s\\s+0\\s+\\d{4}-\\S+\\s+${receiver.url.replaceAll("/", "\\/")}$`,
    ),
  );
  expect(
    json<Subscription[]>(await glyph("subs", "ls", "--json")).find((s) => s.name === name),
  ).toMatchObject({
    stream_types: [type],
  });

  const details = await glyph("subs", "get", name);
  expect(details.code).toBe(0);
  expect(details.stdout).toMatch(new RegExp(`^subscription\\s+${name}\\n`));
  expect(details.stdout).toMatch(/\nstatus\s+active\n/);
  expect(details.stdout).toMatch(new RegExp(`\\nstream types\\s+${type}\\n`));
  expect(details.stdout).toMatch(/\nevent types\s+all\n/);
  const got = json<Subscription>(await glyph("subs", "get", name, "--json"));
  expect(got).toMatchObject({ name, checkpoint: takenBy(name)[0]?.events[0]?.checkpoint, dead_letters: 0 });

  const paused = await glyph("subs", "pause", name);
  expect(paused.stdout).toMatch(new RegExp(`^subscription ${name} paused: paused, lag`));
  expect(json<Subscription>(await glyph("subs", "resume", name, "--json")).status).toBe("active");

  // Replay from the start: the event again, under its webhook-id.
  const before = takenBy(name).length;
  const replay = await glyph("subs", "replay", name, "--from", "start");
  expect(replay.stdout).toMatch(new RegExp(`^subscription ${name} replays from start: active, lag 1 event,`));
  await receiver.waitUntil(() => takenBy(name).length > before);
  expect(takenBy(name).at(-1)?.webhookId).toBe(takenBy(name)[0]?.webhookId);

  const removed = await glyph("subs", "rm", name);
  expect(removed).toMatchObject({ code: 0, stdout: `deleted subscription ${name} and its dead letters\n` });
  const gone = await glyph("subs", "get", name);
  expect(gone.code).toBe(1);
  expect(gone.stderr).toBe(
    `glyph: There is no subscription ${name}; GET /subscriptions lists them, PUT /subscriptions/${name} makes it.\n`,
  );
});

it("subs dead-letters lists what the receiver refused; subs redrive delivers it again", async () => {
  const name = `cli-${crypto.randomUUID().slice(0, 8)}`;
  const type = `clisub_${crypto.randomUUID().slice(0, 8)}`;
  const poison = crypto.randomUUID();
  let refusing = true;
  receiver.answer = (delivery) =>
    refusing && delivery.events.some((event) => event.event_id === poison)
      ? { status: 500 }
      : { status: 204 };
  try {
    const created = json<PutSubscriptionResult>(
      await glyph(
        "subs",
        "put",
        name,
        receiver.url,
        "--type",
        type,
        "--event-type",
        "context_updated",
        "--json",
      ),
    );
    if (created.created) receiver.secret = created.secret;
    const events = JSON.stringify([
      { event: context("poison"), event_id: poison },
      { event: context("fine"), event_id: crypto.randomUUID() },
    ]);
    const streamId = crypto.randomUUID();
    expect((await runGlyph(["append", streamId, started(), "--type", type], env)).code).toBe(0);
    expect((await runGlyph(["append", streamId, "-"], env, events)).code).toBe(0);
    await receiver.waitUntil(() => takenBy(name).length >= 1);

    const table = await glyph("subs", "dead-letters", name);
    expect(table.code).toBe(0);
    const [header, row, ...rest] = table.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^id\s+webhook id\s+events\s+attempts\s+dead at\s+re-drive\s+last error$/);
    expect(row).toMatch(new RegExp(`^\\d+\\s+${poison}\\s+1\\s+\\d+\\s+\\S+\\s+HTTP 500$`));
    expect(rest).toEqual([]);
    const letters = (await glyph("subs", "dead-letters", name, "--json")).stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as DeadLetter);
    expect(letters).toEqual([expect.objectContaining({ webhook_id: poison, redrive_requested: false })]);

    refusing = false;
    const redrive = await glyph("subs", "redrive", name, "--ids", String(letters[0]?.id));
    expect(redrive).toMatchObject({ code: 0, stdout: `1 dead letter of ${name} queued for delivery\n` });
    await receiver.waitUntil(() => takenBy(name).some((d) => d.webhookId === poison));
    expect(
      json<{ redriven: number }>(await glyph("subs", "redrive", name, "--json")).redriven,
    ).toBeLessThanOrEqual(1);
    expect((await glyph("subs", "rm", name, "--json")).stdout).toBe(
      `${JSON.stringify({ name, deleted: true })}\n`,
    );
  } finally {
    receiver.answer = () => ({ status: 204 });
  }
});

it("subs errors: one sentence on stderr, 2 for a usage error, 1 for what the service refused", async () => {
  const oneLine = (run: GlyphRun, code: number, pattern: RegExp) => {
    expect(run.code, run.stderr).toBe(code);
    expect(run.stdout).toBe("");
    expect(run.stderr.split("\n")).toHaveLength(2);
    expect(run.stderr).toMatch(pattern);
  };
  oneLine(await glyph("subs"), 2, /^glyph: glyph subs needs one of ls, get, put/);
  oneLine(await glyph("subs", "frob"), 2, /^glyph: Unknown subs command "frob"/);
  oneLine(await glyph("subs", "get"), 2, /^glyph: glyph subs get needs a subscription name\./);
  oneLine(await glyph("subs", "put", "x"), 2, /^glyph: glyph subs put needs the URL to deliver to/);
  oneLine(await glyph("subs", "replay", "x"), 2, /^glyph: glyph subs replay needs --from/);
  oneLine(
    await glyph("subs", "put", "x", "https://example.com", "--batch", "ten"),
    2,
    /--batch must be a whole number/,
  );
  oneLine(
    await glyph("subs", "put", "x", "https://example.com", "--event-type", "nope"),
    2,
    /--event-type "nope" is not one of workflow_started/,
  );
  oneLine(
    await glyph("subs", "put", "x", "ftp://example.com"),
    1,
    /^glyph: The body is invalid: url: the scheme ftp/,
  );
  oneLine(
    await glyph("subs", "pause", `missing-${crypto.randomUUID().slice(0, 8)}`),
    1,
    /^glyph: There is no subscription/,
  );
  oneLine(await runGlyph(["subs", "ls"], { ...env, GLYPH_TOKEN: TEST_TOKENS.reader }), 1, /^glyph: /);
});
