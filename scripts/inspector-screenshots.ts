import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { launchChromium } from "./lib/chromium";
import { makeToken } from "./lib/tokens";
import { startLocalStack } from "./local/stack";

// `npm run screenshots`: the README's pictures of the inspector (docs/inspector-*.png),
// taken in the machine's Chromium from the local stack on a throwaway embedded
// PostgreSQL, with a few workflows written through the API first.

const DOCS = fileURLToPath(new URL("../docs/", import.meta.url));
const VIEWPORT = { width: 1280, height: 800 };

type Event = Record<string, unknown>;

const minted = makeToken({ id: "screenshots", scopes: "read,append" });
if (!minted.ok) throw new Error(minted.error);
const { token, entry } = minted;

const stack = await startLocalStack({
  database: { embedded: {} },
  worker: { vars: { AUTH_TOKENS: JSON.stringify([entry]) } },
});
const browser = await launchChromium().catch(async (error: unknown) => {
  await stack.close();
  throw error;
});

try {
  const base = stack.worker.proxyUrl;
  const append = async (
    stream: string,
    events: Array<{ event: Event; metadata?: Event }>,
    type = "workflow",
  ) => {
    const response = await fetch(new URL(`/streams/${stream}/events`, base), {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ stream_type: type, events }),
    });
    if (response.status !== 201) throw new Error(`append: ${response.status} ${await response.text()}`);
  };
  const start = (config: string) => ({
    type: "workflow_started",
    workflow_id: randomUUID(),
    config_version: config,
  });
  const activate = (step: string, assigned: string[] = []) => ({
    type: "step_activated",
    step_id: step,
    assigned_to: assigned,
  });
  const complete = (step: string, result: unknown) => ({ type: "step_completed", step_id: step, result });
  const move = (from: string, to: string, condition: string | null = null) => ({
    type: "transition_occurred",
    from_step: from,
    to_step: to,
    condition_met: condition,
  });

  // A handful of streams of two types, in every status, then the one the stream page shows.
  for (const [index, config] of ["invoice-approval@3", "invoice-approval@3", "onboarding@1"].entries()) {
    const type = config.startsWith("onboarding") ? "onboarding" : "workflow";
    await append(randomUUID(), [{ event: start(config) }, { event: activate("intake") }], type);
    if (index === 1) {
      const failed = randomUUID();
      await append(failed, [
        { event: start(config) },
        { event: activate("payment") },
        { event: { type: "workflow_failed", error: "payment provider timed out", recoverable: true } },
      ]);
    }
  }
  for (let n = 0; n < 3; n++) {
    await append(randomUUID(), [
      { event: start("invoice-approval@3") },
      { event: activate("intake") },
      { event: complete("intake", { fields_ok: true }) },
      { event: { type: "workflow_completed", final_output: { approved: n !== 1 } } },
    ]);
  }
  await append(randomUUID(), [{ event: start("onboarding@1") }], "onboarding");

  const shown = randomUUID();
  const reviewers = [randomUUID(), randomUUID()];
  await append(shown, [
    { event: start("invoice-approval@3"), metadata: { by: "api", request_id: "req_8f2c" } },
    {
      event: {
        type: "context_updated",
        key: "invoice",
        value: { number: "INV-2026-0412", amount: 1840.5, currency: "EUR" },
      },
    },
    { event: activate("intake") },
    { event: complete("intake", { fields_ok: true }), metadata: { by: "intake-bot" } },
    { event: move("intake", "review", "amount > 1000") },
    { event: activate("review", reviewers), metadata: { by: "router" } },
  ]);
  await append(shown, [
    {
      event: {
        type: "consensus_calculated",
        step_id: "review",
        agreement: 1,
        metric: "unanimous",
        resolved_by: null,
      },
    },
    { event: complete("review", { approved: true }), metadata: { by: "alice" } },
    { event: move("review", "payment") },
    { event: activate("payment") },
  ]);

  const page = await (await browser.newContext({ viewport: VIEWPORT, colorScheme: "light" })).newPage();
  await page.goto(new URL("/inspect/", base).href);
  await page.getByLabel("Access token").fill(token);
  await page.getByRole("button", { name: "Open", exact: true }).click();
  await page.locator("#streams-live[data-state='live']").waitFor();
  await page.locator("#streams-view table[aria-busy='false']").waitFor();
  await page.screenshot({ path: `${DOCS}inspector-streams.png` });

  await page.goto(new URL(`/inspect/#/streams/${shown}`, base).href);
  await page.locator("#tail-status[data-state='live']").waitFor();
  // The state where the review was approved, and an event that has just arrived live.
  await page.getByLabel("Version number").fill("8");
  await page.getByLabel("Version number").press("Enter");
  await page.locator("#state[data-version='8']").waitFor();
  await append(shown, [
    {
      event: { type: "context_updated", key: "payment_ref", value: "SEPA-77120" },
      metadata: { by: "bank-sync" },
    },
  ]);
  await page.locator("#stream-view tbody tr[data-version='11']").waitFor();
  await page.locator("#state-version-exact").blur();
  await page.screenshot({ path: `${DOCS}inspector-stream.png`, fullPage: true });
  console.log(`Saved ${DOCS}inspector-streams.png and ${DOCS}inspector-stream.png`);
} finally {
  await browser.close();
  await stack.close();
}
