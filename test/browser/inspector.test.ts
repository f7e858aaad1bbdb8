import type { Browser, Page, Route, WebSocketRoute } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { launchChromium } from "../../scripts/lib/chromium";
import type { JsonValue } from "../../src/events/wire";
import { type RunningWorker, startWorker } from "../e2e/worker-harness";
import { adminAuthorization, TEST_TOKENS } from "../support/test-tokens";

// The inspector (/inspect) in a real Chromium (Debian's, driven by playwright-core)
// against the real Worker, as `npm start` serves it: sign in, the streams and their
// filters, a stream's timeline, the state at a version with the slider, and events that
// arrive live in the tail and in the list. The streams here are of a type of this run's
// own, so other tiers' streams (on the same database) never show in a filtered list.

let worker: RunningWorker;
let browser: Browser;
const TYPE = `inspector-${crypto.randomUUID().slice(0, 8)}`;
const OTHER_TYPE = `${TYPE}-other`;
/** Every page's uncaught errors and console errors (a CSP refusal is one). */
const pageErrors: string[] = [];
/** Every request of every page answered 400 or more, as "status path". */
const refused: string[] = [];

beforeAll(async () => {
  [worker, browser] = await Promise.all([startWorker(inject("databaseWsProxy")), launchChromium()]);
});
afterAll(async () => {
  await browser?.close();
  await worker?.stop();
});

/** Polls until the assertion holds: live updates take a throttled second or more on a busy machine. */
const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 15_000, interval: 100 });

const started = () => ({ type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" });

async function append(
  streamId: string,
  events: Array<{ event: Record<string, JsonValue>; metadata?: JsonValue }>,
  streamType = TYPE,
) {
  const response = await fetch(new URL(`/streams/${streamId}/events`, worker.url), {
    method: "POST",
    headers: { "content-type": "application/json", ...adminAuthorization },
    body: JSON.stringify({ stream_type: streamType, events }),
  });
  expect(response.status, await response.text()).toBe(201);
}

/** A page of a fresh context (its own sessionStorage), its errors collected. */
async function openPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.on("console", (message) => {
    // A refused request is counted below, by its address; Chromium logs it here too.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      pageErrors.push(`${page.url()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => pageErrors.push(`${page.url()}: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) {
      const url = new URL(response.url());
      refused.push(`${response.status()} ${url.pathname}${url.search}`);
    }
  });
  return page;
}

async function signIn(page: Page, path = "/inspect/", token: string = TEST_TOKENS.reader): Promise<void> {
  await page.goto(new URL(path, worker.url).href);
  await page.getByLabel("Access token").fill(token);
  await page.getByRole("button", { name: "Open", exact: true }).click();
  await page.locator("#login-view").waitFor({ state: "hidden" });
}

/** `count` new streams of a type, made 16 at a time. */
async function makeStreams(type: string, count: number): Promise<void> {
  const ids = Array.from({ length: count }, () => crypto.randomUUID());
  for (let from = 0; from < ids.length; from += 16) {
    await Promise.all(ids.slice(from, from + 16).map((id) => append(id, [{ event: started() }], type)));
  }
}

/** The ids of a type's streams in the server's order, newest first. */
async function newestFirst(type: string): Promise<string[]> {
  const response = await fetch(new URL(`/streams?type=${type}&order=newest&limit=1000`, worker.url), {
    headers: adminAuthorization,
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { streams: Array<{ stream_id: string }> }).streams.map(
    (head) => head.stream_id,
  );
}

/** The stream ids of the list's rows, top to bottom. */
const listed = (page: Page) => page.locator("#streams-view tbody tr td:first-child").allTextContents();

/** The list filtered as the form does it, with live updates on. */
async function filterList(page: Page, type: string, status = "") {
  // The view is made anew for other filters: the old one's state must not answer for it.
  await page.locator("#streams-view").evaluate((view) => {
    for (const element of view.querySelectorAll("table, #streams-live")) element.setAttribute("data-old", "");
  });
  await page.getByLabel("Type").fill(type);
  await page.getByLabel("Status").selectOption(status);
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.locator("#streams-live[data-state='live']:not([data-old])").waitFor();
  await page.locator("#streams-view table[aria-busy='false']:not([data-old])").waitFor();
}

// Three streams of this run's type, created in this order, and one of another type.
const running = crypto.randomUUID();
const completed = crypto.randomUUID();
const fresh = crypto.randomUUID();
const other = crypto.randomUUID();

beforeAll(async () => {
  await append(running, [
    { event: started(), metadata: { by: "alice" } },
    { event: { type: "step_activated", step_id: "review", assigned_to: [] } },
    { event: { type: "context_updated", key: "amount", value: 120 }, metadata: { by: "bob" } },
  ]);
  await append(completed, [
    { event: started() },
    { event: { type: "workflow_completed", final_output: { approved: true } } },
  ]);
  await append(fresh, [{ event: started() }]);
  await append(other, [{ event: started() }], OTHER_TYPE);
});

describe("the inspector's files", () => {
  it("are served under /inspect with a strict CSP, and every other path is still the API's", async () => {
    const get = (path: string, headers: Record<string, string> = {}) =>
      fetch(new URL(path, worker.url), { headers, redirect: "manual" });

    const bare = await get("/inspect");
    expect(bare.status).toBe(307);
    expect(bare.headers.get("location")).toBe("/inspect/");

    const page = await get("/inspect/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="app.js"></script>');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/i); // no inline style or handler

    const script = await get("/inspect/app.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(script.headers.get("content-security-policy")).toBe(csp);

    // Misses are the Worker's problem+json, not an asset 404 page.
    for (const path of ["/inspect/nope.js", "/nope", `/streams/${running}/nope`, "/_headers"]) {
      const missing = await get(path, adminAuthorization);
      expect(missing.status, path).toBe(404);
      expect(missing.headers.get("content-type"), path).toMatch(/^application\/problem\+json/);
      expect(missing.headers.get("content-security-policy"), path).toBeNull();
    }
    // And the API is untouched.
    const list = await get(`/streams?type=${TYPE}`, adminAuthorization);
    expect(list.status).toBe(200);
    expect(list.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await get("/openapi.json")).status).toBe(200);
    expect((await get("/streams")).status).toBe(401);
    const posted = await fetch(new URL("/streams", worker.url), {
      method: "POST",
      headers: adminAuthorization,
    });
    expect(posted.status).toBe(405);
  });
});

describe("the inspector in Chromium", () => {
  it("refuses a wrong token with the server's words, keeps a right one for the tab only, and forgets it", async () => {
    const page = await openPage();
    await page.goto(new URL("/inspect", worker.url).href);
    await eventually(() => page.locator(":focus").getAttribute("id")).toBe("token");

    await page.keyboard.type("gst_not-a-token");
    await page.keyboard.press("Enter");
    await eventually(() => page.locator("#login-error").textContent()).toMatch(
      /^The server refused this token: .+/,
    );
    expect(await page.locator("#login-view").isVisible()).toBe(true);

    await page.getByLabel("Access token").fill(TEST_TOKENS.reader);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Streams" }).waitFor();
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([TEST_TOKENS.reader]);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(page.url()).not.toContain(TEST_TOKENS.reader);

    // A reload keeps the session; the token never shows in the page.
    await page.reload();
    await page.getByRole("heading", { name: "Streams" }).waitFor();
    expect(await page.content()).not.toContain(TEST_TOKENS.reader);

    await page.getByRole("button", { name: "Forget token" }).click();
    await page.getByLabel("Access token").waitFor();
    expect(await page.locator("#login-error").textContent()).toContain("forgotten");
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    // A token the server stops accepting (revoked, say) brings the form back, saying so.
    await page.getByLabel("Access token").fill(TEST_TOKENS.reader);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Streams" }).waitFor();
    await page.evaluate((key) => {
      for (let i = 0; i < sessionStorage.length; i++)
        sessionStorage.setItem(sessionStorage.key(i) ?? key, key);
    }, "gst_revoked");
    await page.reload();
    await page.getByLabel("Access token").waitFor();
    expect(await page.locator("#login-error").textContent()).toMatch(/^The server refused the token: .+/);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.context().close();
  });

  it("lists the streams newest first, by type and by status", async () => {
    const page = await openPage();
    await signIn(page);
    await filterList(page, TYPE);
    expect(await listed(page)).toEqual([fresh, completed, running]);
    const first = page.locator("#streams-view tbody tr").first();
    expect(await first.locator("td").allTextContents()).toEqual([
      fresh,
      TYPE,
      "running",
      "1",
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
    ]);
    expect(await page.locator("#streams-summary").textContent()).toBe("3 streams, newest first.");
    // The filters are in the address, so a reload or a shared link keeps them.
    expect(new URL(page.url()).hash).toBe(`#/?type=${TYPE}`);

    await filterList(page, TYPE, "completed");
    expect(await listed(page)).toEqual([completed]);
    await filterList(page, OTHER_TYPE);
    expect(await listed(page)).toEqual([other]);
    await filterList(page, TYPE, "failed");
    expect(await page.locator("#streams-summary").textContent()).toBe("No streams match.");
    await page.context().close();
  });

  it("follows the feed from its head, however long it is, and reads the list a page at a time, newest first", async () => {
    // A feed of more than 2,000 events of this type: none of them is sent to the page.
    const longType = `${TYPE}-long`;
    const stream = crypto.randomUUID();
    await append(stream, [{ event: started() }], longType);
    for (let batch = 0; batch < 4; batch++) {
      await append(
        stream,
        Array.from({ length: 500 }, (_, i) => ({ event: { type: "context_updated", key: "n", value: i } })),
        longType,
      );
    }
    const page = await openPage();
    /** The feed's sockets: their query, and the types of the messages each received, in order. */
    const feeds: Array<{ search: string; received: string[] }> = [];
    page.on("websocket", (socket) => {
      if (new URL(socket.url()).pathname !== "/watch") return;
      const feed = { search: new URL(socket.url()).search, received: [] as string[] };
      feeds.push(feed);
      socket.on("framereceived", ({ payload }) => {
        feed.received.push((JSON.parse(String(payload)) as { type: string }).type);
      });
    });
    await signIn(page);
    await filterList(page, longType);
    expect(await listed(page)).toEqual([stream]);
    const feed = feeds.at(-1);
    expect(feed?.search).toBe(`?after=now&stream_type=${encodeURIComponent(longType)}`);
    await eventually(() => feed?.received).toEqual(["started", "caught_up"]);
    // What commits now arrives: one event, one new version.
    await append(stream, [{ event: { type: "context_updated", key: "n", value: -1 } }], longType);
    await eventually(() => page.locator("#streams-view tbody tr td.num").textContent()).toBe("2002");
    await eventually(() => feed?.received).toEqual(["started", "caught_up", "event"]);

    // 101 streams: the first page shows the 100 newest, "Load 100 more" the last one, in the server's order.
    const manyType = `${TYPE}-many`;
    await makeStreams(manyType, 101);
    const newest = await newestFirst(manyType);
    expect(newest).toHaveLength(101);
    await filterList(page, manyType);
    expect(await listed(page)).toEqual(newest.slice(0, 100));
    expect(await page.locator("#streams-summary").textContent()).toBe("The 100 newest streams; more match.");
    await page.getByRole("button", { name: "Load 100 more" }).click();
    await eventually(() => listed(page)).toEqual(newest);
    expect(await page.locator("#streams-summary").textContent()).toBe("101 streams, newest first.");
    expect(await page.getByRole("button", { name: "Load 100 more" }).isVisible()).toBe(false);
    await page.context().close();
  });

  it("reads the list again when the feed's socket starts again, for what changed while it was down", async () => {
    const ownType = `${TYPE}-reconnect`;
    const first = crypto.randomUUID();
    const madeMeanwhile = crypto.randomUUID();
    await append(first, [{ event: started() }], ownType);
    const page = await openPage();
    const sockets: WebSocketRoute[] = [];
    await page.routeWebSocket(/\/watch\?after=now/, async (socket) => {
      sockets.push(socket);
      // The list's second socket: a stream is made before it reaches the server, so the
      // feed never sends it; only reading the list again can show it.
      if (sockets.length === 3) await append(madeMeanwhile, [{ event: started() }], ownType);
      socket.connectToServer();
    });
    await signIn(page); // socket 1: the unfiltered list
    await filterList(page, ownType); // socket 2
    expect(await listed(page)).toEqual([first]);
    await sockets[1]?.close({ code: 1011, reason: "unavailable" });
    await eventually(() => sockets.length).toBe(3);
    await eventually(() => listed(page)).toEqual([madeMeanwhile, first]);
    await page.locator("#streams-live[data-state='live']").waitFor();
    await page.context().close();
  });

  it("keeps the pages read when the feed's socket starts again, and a 'Load more' overtaken by that read skips nothing", async () => {
    const ownType = `${TYPE}-race`;
    await makeStreams(ownType, 101);
    const page = await openPage();
    const sockets: WebSocketRoute[] = [];
    /** A stream made before each of the list's later sockets reaches the server: only reading the list again shows it. */
    const madeMeanwhile: string[] = [];
    await page.routeWebSocket(/\/watch\?after=now/, async (socket) => {
      sockets.push(socket);
      if (sockets.length >= 3) {
        const id = crypto.randomUUID();
        await append(id, [{ event: started() }], ownType);
        madeMeanwhile.push(id);
      }
      socket.connectToServer();
    });
    await signIn(page); // socket 1: the unfiltered list
    await filterList(page, ownType); // socket 2
    expect(await listed(page)).toEqual((await newestFirst(ownType)).slice(0, 100));
    const loadMore = page.getByRole("button", { name: "Load 100 more" });
    const summary = page.locator("#streams-summary");

    // "Load more" is held until a reconnection has read the list again: its page is of
    // a list that is gone, and the cursor stays the new list's.
    let hold: (route: Route) => void = () => undefined;
    const held = new Promise<Route>((resolve) => {
      hold = resolve;
    });
    await page.route(/\/streams\?.*cursor=/, (route) => hold(route), { times: 1 });
    await loadMore.click();
    const lateRead = await held;
    await sockets[1]?.close({ code: 1011, reason: "unavailable" });
    await eventually(() => madeMeanwhile.length).toBe(1);
    await eventually(async () => (await listed(page))[0]).toBe(madeMeanwhile[0]);
    await lateRead.continue();
    await page.waitForResponse((response) => response.request() === lateRead.request());
    await loadMore.click({ timeout: 15_000 });
    const all = await newestFirst(ownType);
    expect(all).toHaveLength(102);
    await eventually(() => listed(page)).toEqual(all);
    expect(await summary.textContent()).toBe("102 streams, newest first.");

    // Another reconnection reads the list again as far as it was read (two pages), not its first page only.
    await sockets[2]?.close({ code: 1011, reason: "unavailable" });
    await eventually(() => madeMeanwhile.length).toBe(2);
    const more = await newestFirst(ownType);
    expect(more).toHaveLength(103);
    await eventually(() => listed(page)).toEqual(more);
    expect(await summary.textContent()).toBe("103 streams, newest first.");
    expect(await loadMore.isVisible()).toBe(false);
    await page.locator("#streams-live[data-state='live']").waitFor();
    await page.context().close();
  });

  it("stays live through a reconnection that never opened, for a token limited to a stream type", async () => {
    const invoice = crypto.randomUUID();
    await append(invoice, [{ event: started() }], "invoice");
    const page = await openPage();
    const sockets: WebSocketRoute[] = [];
    await page.routeWebSocket(/\/watch\?after=now/, async (socket) => {
      sockets.push(socket);
      // The first reconnection never opens (the server away for a moment): the page asks
      // the API why, with a request this token may make, and tries again.
      if (sockets.length === 2) await socket.close({ code: 1006 });
      else socket.connectToServer();
    });
    await signIn(page, "/inspect/#/?type=invoice", TEST_TOKENS.invoices);
    await page.locator("#streams-live[data-state='live']").waitFor();
    expect(await listed(page)).toContain(invoice);
    await sockets[0]?.close({ code: 1011, reason: "unavailable" });
    await eventually(() => sockets.length).toBe(3);
    await page.locator("#streams-live[data-state='live']").waitFor();
    const made = crypto.randomUUID();
    await append(made, [{ event: started() }], "invoice");
    await eventually(() => listed(page)).toContain(made);
    await page.context().close();
  });

  it("shows a stream's timeline and the state at any version, and events arrive live in the tail and the list", async () => {
    const list = await openPage();
    await signIn(list);
    await filterList(list, TYPE);

    const page = await openPage();
    await signIn(page, `/inspect/#/streams/${running}`);
    await page.locator("#tail-status[data-state='live']").waitFor();
    const versions = async () =>
      Promise.all(
        (await page.locator("#stream-view tbody tr").all()).map((row) => row.getAttribute("data-version")),
      );
    expect(await versions()).toEqual(["3", "2", "1"]);
    const oldest = page.locator("#stream-view tbody tr").last();
    expect(await oldest.locator("td").nth(1).textContent()).toBe("workflow_started");
    expect(await oldest.locator("td").nth(4).textContent()).toBe('{"by":"alice"}');

    // The slider starts at the newest version, then moves with the keyboard alone.
    const state = async () => JSON.parse((await page.locator("#state").textContent()) ?? "null");
    await eventually(async () => (await state())?.context).toEqual({ amount: 120 });
    const slider = page.getByRole("slider", { name: "Version" });
    await slider.focus();
    await page.keyboard.press("Home");
    expect(await page.locator("#state-version-shown").textContent()).toBe("version 1 of 3");
    await eventually(async () => (await state())?.current_step).toBeNull();
    expect(await page.locator("#state").getAttribute("data-version")).toBe("1");
    await page.keyboard.press("ArrowRight");
    await eventually(async () => (await state())?.current_step).toBe("review");
    expect((await state())?.context).toEqual({});
    // The exact number, and a version picked in the timeline.
    await page.getByLabel("Version number").fill("3");
    await page.getByLabel("Version number").press("Enter");
    await eventually(async () => (await state())?.context).toEqual({ amount: 120 });
    await page.getByRole("button", { name: "Show the state at version 1" }).click();
    await eventually(() => page.locator("#state").getAttribute("data-version")).toBe("1");
    expect(await slider.inputValue()).toBe("1");

    // Live: a new event is a new row at the top, the slider reaches it (it stays where it
    // was), and the list, open in another tab, shows the stream's new version.
    await append(running, [
      { event: { type: "step_completed", step_id: "review", result: { approved: true } } },
    ]);
    await page.locator("#stream-view tbody tr[data-version='4']").waitFor();
    expect(await versions()).toEqual(["4", "3", "2", "1"]);
    expect(await page.locator("#stream-view tbody tr").first().locator("td").nth(1).textContent()).toBe(
      "step_completed",
    );
    expect(await page.locator("#state-version-shown").textContent()).toBe("version 1 of 4");
    await eventually(() => page.locator("#announcer").textContent()).toBe("New event, version 4.");
    await eventually(() =>
      list.locator(`#streams-view tbody tr:has(a[data-stream='${running}']) td.num`).textContent(),
    ).toBe("4");

    // At the newest version the slider follows: the next event moves it and the state.
    await slider.focus();
    await page.keyboard.press("End");
    await append(running, [{ event: { type: "workflow_completed", final_output: { approved: true } } }]);
    await eventually(() => page.locator("#state-version-shown").textContent()).toBe(
      "version 5 of 5 (the newest)",
    );
    await eventually(async () => (await state())?.status).toBe("completed");
    await eventually(() => page.locator("#stream-view dl.head").textContent()).toContain("completed");

    // A stream made now appears at the top of the list.
    const made = crypto.randomUUID();
    await append(made, [{ event: started() }]);
    await eventually(async () => (await listed(list))[0]).toBe(made);
    expect(await listed(list)).toEqual([made, fresh, completed, running]);
    await eventually(() => list.locator("#announcer").textContent()).toBe("A new stream is listed.");
    await page.context().close();
    await list.context().close();
  });

  it("resumes the live tail from the last version it received when the socket drops", async () => {
    const stream = crypto.randomUUID();
    await append(stream, [{ event: started() }, { event: { type: "context_updated", key: "n", value: 2 } }]);
    const page = await openPage();
    // Every watch socket the page opens goes through here, to the real server.
    const sockets: WebSocketRoute[] = [];
    await page.routeWebSocket(/\/streams\/[^/]+\/watch/, (socket) => {
      sockets.push(socket);
      socket.connectToServer();
    });
    await signIn(page, `/inspect/#/streams/${stream}`);
    await page.locator("#tail-status[data-state='live']").waitFor();
    await append(stream, [{ event: { type: "context_updated", key: "n", value: 3 } }]);
    await page.locator("#stream-view tbody tr[data-version='3']").waitFor();

    // The server goes away (1011, as when its database fails): the page says so and comes back.
    await sockets[0]?.close({ code: 1011, reason: "reconnect with from=3" });
    await page.locator("#tail-status[data-state='reconnecting']").waitFor();
    expect(await page.locator("#tail-status").textContent()).toMatch(
      /^Live tail: reconnecting from version 3 \(reconnect with from=3; trying again in 1 s\)…$/,
    );
    await page.locator("#tail-status[data-state='live']").waitFor();
    expect(sockets.map((socket) => new URL(socket.url()).search)).toEqual(["?from=2", "?from=3"]);

    await append(stream, [{ event: { type: "context_updated", key: "n", value: 4 } }]);
    await page.locator("#stream-view tbody tr[data-version='4']").waitFor();
    const versions = await Promise.all(
      (await page.locator("#stream-view tbody tr").all()).map((row) => row.getAttribute("data-version")),
    );
    expect(versions).toEqual(["4", "3", "2", "1"]);
    await page.context().close();
  });

  it("ran every page without an error, a CSP refusal or a failed request but the refused tokens'", () => {
    expect(pageErrors).toEqual([]);
    expect(refused).toEqual([
      "401 /streams?limit=1",
      "401 /streams?order=newest&limit=100",
      "403 /streams?limit=1", // the type-limited token's sign-in: it may not list every type
    ]);
  });
});
