import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../src/db/create-pool";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { started, workflowCompleted } from "../support/event-builders";
import {
  api,
  appendOk,
  expectProblem,
  getJson,
  problemCode,
  type StreamsPageResult,
} from "../support/http-client";
import { TEST_TOKENS } from "../support/test-tokens";

// GET /streams?order=newest: newest created first, paged by an opaque cursor over
// (created_at, stream_id). Streams are made through the API, then their created_at is set
// in the database to instants that tie (to the microsecond) or differ only in the
// microseconds (equal as the heads show them, in milliseconds), so the order and the
// cursor are held where they are hardest: ties broken by stream id, descending.

const pool = createPool(readDatabaseSettings(env), { max: 2 });
afterAll(() => pool.end());

const type = `newest-${crypto.randomUUID().slice(0, 8)}`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const CURSOR = /^[A-Za-z0-9_-]+$/;
const NOT_A_CURSOR =
  /cursor: expected a hyphenated UUID \(.*\) or the next_cursor of a page with order=newest/;

/** Instants in 2001, before every stream any test makes now: three of a tie, two a microsecond later, one a second before. */
const TIE = "2001-02-03T04:05:06.123456Z";
const TIE_PLUS_1US = "2001-02-03T04:05:06.123457Z";
const EARLIER = "2001-02-03T04:05:05.000000Z";
const CREATED = [TIE, TIE, TIE, TIE_PLUS_1US, TIE_PLUS_1US, EARLIER, TIE];

interface Made {
  id: string;
  createdAt: string;
  completed: boolean;
}
const made: Made[] = [];

/** The order the API must answer: created_at descending, then stream id descending. */
const newestFirst = (streams: readonly Made[]) =>
  [...streams]
    .sort((a, b) =>
      a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : a.id < b.id ? 1 : -1,
    )
    .map((stream) => stream.id);

beforeAll(async () => {
  for (const [index, createdAt] of CREATED.entries()) {
    const id = crypto.randomUUID();
    const completed = index % 3 === 0;
    await appendOk(id, {
      stream_type: type,
      events: [{ event: started() }, ...(completed ? [{ event: workflowCompleted() }] : [])],
    });
    made.push({ id, createdAt, completed });
  }
  for (const stream of made) await setCreatedAt(stream.id, stream.createdAt);
});

/** Sets a stream's creation time (to the microsecond) in the database. */
async function setCreatedAt(streamId: string, createdAt: string): Promise<void> {
  await pool.query("UPDATE workflow_streams SET created_at = $1::timestamptz WHERE stream_id = $2::uuid", [
    createdAt,
    streamId,
  ]);
}

/** Every page of a listing, following next_cursor; each page's cursor is checked as it goes. */
async function allPages(query: string, headers: Record<string, string> = {}): Promise<StreamsPageResult[]> {
  const pages: StreamsPageResult[] = [];
  let cursor: string | null = null;
  do {
    const page: StreamsPageResult = await getJson<StreamsPageResult>(
      `/streams?${query}${cursor ? `&cursor=${cursor}` : ""}`,
      200,
      headers,
    );
    pages.push(page);
    cursor = page.next_cursor;
    if (cursor !== null) expect(cursor).toMatch(CURSOR);
    expect(pages.length).toBeLessThan(50);
  } while (cursor !== null);
  return pages;
}

const ids = (pages: readonly StreamsPageResult[]) =>
  pages.flatMap((page) => page.streams.map((s) => s.stream_id));

describe("GET /streams?order=newest", () => {
  it("lists newest first, ties (to the microsecond) by stream id descending, with the heads", async () => {
    const page = await getJson<StreamsPageResult>(`/streams?type=${type}&order=newest`);
    expect(page.next_cursor).toBeNull();
    expect(page.streams.map((stream) => stream.stream_id)).toEqual(newestFirst(made));
    // The heads show milliseconds: the two instants a microsecond apart look alike.
    expect(new Set(page.streams.slice(0, 6).map((stream) => stream.created_at))).toEqual(
      new Set(["2001-02-03T04:05:06.123Z"]),
    );
    expect(page.streams.at(-1)?.created_at).toBe("2001-02-03T04:05:05.000Z");
    // The default order is still the stream id's.
    const byId = await getJson<StreamsPageResult>(`/streams?type=${type}`);
    expect(byId.streams.map((stream) => stream.stream_id)).toEqual(made.map((s) => s.id).sort());
  });

  it("pages across ties without skipping or repeating, whatever the page size", async () => {
    for (const limit of [1, 2, 3, 4, 7]) {
      const pages = await allPages(`type=${type}&order=newest&limit=${limit}`);
      expect(ids(pages), `limit=${limit}`).toEqual(newestFirst(made));
      // A full last page still links one more, which is empty.
      expect(pages.length, `limit=${limit}`).toBe(Math.floor(made.length / limit) + 1);
      for (const page of pages.slice(0, -1)) expect(page.streams).toHaveLength(limit);
    }
  });

  it("keeps its place when a stream is created, or ties with the cursor's, while paging", async () => {
    const own = `${type}-paging`;
    const make = async (id: string, createdAt?: string) => {
      await appendOk(id, { stream_type: own, events: [{ event: started() }] });
      if (createdAt !== undefined) await setCreatedAt(id, createdAt);
      return { id, createdAt: createdAt ?? "now", completed: false };
    };
    const tiedFour = [];
    for (let index = 0; index < 4; index++) tiedFour.push(await make(crypto.randomUUID(), TIE));
    const first = await getJson<StreamsPageResult>(`/streams?type=${own}&order=newest&limit=2`);
    expect(first.streams.map((stream) => stream.stream_id)).toEqual(newestFirst(tiedFour).slice(0, 2));

    // Made after the first page: newest of all, so not in the pages that follow. Two more
    // at the cursor's very instant: one with an id above every other (it sorts before the
    // cursor, in what was read) and one below (it sorts last: read once, at the end).
    const late = await make(crypto.randomUUID());
    const above = await make(`ffffffff-ffff-4fff-bfff-${crypto.randomUUID().slice(-12)}`, TIE);
    const below = await make(`00000000-0000-4000-8000-${crypto.randomUUID().slice(-12)}`, TIE);
    const rest: string[] = [];
    let cursor = first.next_cursor;
    while (cursor !== null) {
      const page: StreamsPageResult = await getJson<StreamsPageResult>(
        `/streams?type=${own}&order=newest&limit=2&cursor=${cursor}`,
      );
      rest.push(...page.streams.map((stream) => stream.stream_id));
      cursor = page.next_cursor;
    }
    expect(rest).toEqual([...newestFirst(tiedFour).slice(2), below.id]);
    expect(rest).not.toContain(late.id);
    expect(rest).not.toContain(above.id);
    // Read again from the start, everything is there once, in order.
    expect(ids(await allPages(`type=${own}&order=newest&limit=3`))).toEqual([
      late.id,
      above.id,
      ...newestFirst(tiedFour),
      below.id,
    ]);
  });

  it("filters by status and type in that order", async () => {
    const completed = made.filter((stream) => stream.completed);
    const running = made.filter((stream) => !stream.completed);
    expect(ids(await allPages(`type=${type}&status=completed&order=newest&limit=1`))).toEqual(
      newestFirst(completed),
    );
    expect(ids(await allPages(`type=${type}&status=running&order=newest&limit=2`))).toEqual(
      newestFirst(running),
    );
    expect(await getJson(`/streams?type=${type}&status=failed&order=newest`)).toEqual({
      streams: [],
      next_cursor: null,
    });
  });

  it("gives a token limited to stream types only a listing of one of them", async () => {
    await expectProblem(
      await api("/streams?order=newest", { headers: bearer(TEST_TOKENS.invoices) }),
      403,
      /only list streams of type invoice/,
    );
    const newer = crypto.randomUUID();
    const older = crypto.randomUUID();
    await appendOk(older, { stream_type: "invoice", events: [{ event: started() }] });
    await appendOk(newer, { stream_type: "invoice", events: [{ event: started() }] });
    const page = await getJson<StreamsPageResult>(
      "/streams?type=invoice&order=newest&limit=1000",
      200,
      bearer(TEST_TOKENS.invoices),
    );
    expect(page.streams.every((stream) => stream.stream_type === "invoice")).toBe(true);
    const listed = page.streams.map((stream) => stream.stream_id);
    expect(listed.indexOf(newer)).toBeGreaterThanOrEqual(0);
    expect(listed.indexOf(newer)).toBeLessThan(listed.indexOf(older));
    await expectProblem(
      await api("/streams?type=invoice&order=newest", { headers: bearer(TEST_TOKENS.oneStream) }),
      403,
    );
  });

  it("answers a bad order or cursor with a problem that names the parameter", async () => {
    const page = await getJson<StreamsPageResult>(`/streams?type=${type}&order=newest&limit=1`);
    const newestCursor = page.next_cursor as string;
    const encode = (text: string) => btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    const stream = made[0]?.id as string;
    const cases: Array<[string, RegExp]> = [
      ["order=oldest", /order: order is stream_id \(the default\) or newest/],
      ["order=", /order:/],
      ["order=newest&cursor=not-a-cursor", NOT_A_CURSOR],
      [`order=newest&cursor=${stream}`, /cursor: is a cursor of stream id order, not of order=newest/],
      [`cursor=${newestCursor}`, /cursor: is a cursor of order=newest/],
      [`order=stream_id&cursor=${newestCursor}`, /cursor: is a cursor of order=newest/],
      [`order=newest&cursor=${newestCursor}=`, NOT_A_CURSOR],
      [`order=newest&cursor=${encode(`2001-02-30T04:05:06.123456Z,${stream}`)}`, NOT_A_CURSOR],
      [`order=newest&cursor=${encode(`2001-02-03T04:05:06.123Z,${stream}`)}`, NOT_A_CURSOR],
      // Year 0: Date takes it, PostgreSQL has no such year (the query would fail: a 503).
      [`order=newest&cursor=${encode(`0000-01-01T00:00:00.000000Z,${stream}`)}`, NOT_A_CURSOR],
      [`order=newest&cursor=${encode(`2001-02-03T04:05:06.123456Z,${stream.toUpperCase()}`)}`, /cursor:/],
      [`order=newest&cursor=${encode(`2001-02-03T04:05:06.123456Z,${stream},x`)}`, /cursor:/],
      [`order=newest&cursor=${encode(`2001-02-03T04:05:06.123456Z;${stream}`)}`, /cursor:/],
      ["order=newest&limit=1001", /limit/],
    ];
    for (const [query, detail] of cases) {
      const problem = await expectProblem(await api(`/streams?type=${type}&${query}`), 400, detail);
      expect(problemCode(problem), query).toBe("invalid_request");
    }
    // The cursor as made works, and the same instant spelled by hand is the same place.
    const byHand = encode(
      `${made.find((s) => s.id === page.streams[0]?.stream_id)?.createdAt},${page.streams[0]?.stream_id}`,
    );
    expect(byHand).toBe(newestCursor);
  });

  it("describes the order in /openapi.json", async () => {
    const document = await getJson<{
      paths: Record<string, { get: { description: string; parameters: Array<{ name: string }> } }>;
    }>("/openapi.json");
    const operation = document.paths["/streams"]?.get;
    expect(operation?.description).toContain("order=newest");
    expect(operation?.parameters.map((parameter) => parameter.name)).toEqual(
      expect.arrayContaining(["type", "status", "order", "cursor", "limit"]),
    );
  });
});
