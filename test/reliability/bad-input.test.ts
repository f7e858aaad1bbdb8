import { Agent, request } from "node:http";
import type { Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { openTestPool } from "../support/database";
import { adminAuthorization } from "../support/test-tokens";
import { type Case, type CorpusStreams, corpusKinds, generateCorpus } from "./bad-input-corpus";
import { Random, readScale, recordResults, seedFor, sleep, testTimeout, WorkerUnderTest } from "./support";

// Part 3, bad input: a generated corpus of malformed requests against every route, over
// real HTTP (node:http, so the bytes, methods and headers are exactly what the corpus
// says, upgrades included). Whatever the input: never a 5xx, every 4xx is an
// application/problem+json document, a case that must be refused is refused, and
// nothing is written but what the valid cases wrote (rows counted in the database,
// per stream, before and after; every stream the corpus writes to is its own).

const scale = readScale();
const { seed, partSeed } = seedFor("bad-input");
const { cases: caseCount, concurrency, maxMs } = scale.badInput;
const AT = "2026-03-01T10:00:00Z";

let worker: WorkerUnderTest;
let pool: Pool;
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
beforeAll(async () => {
  worker = await WorkerUnderTest.start(inject("databaseWsProxy"));
  pool = openTestPool(2);
});
afterAll(async () => {
  agent.destroy();
  await worker?.stop();
  await pool?.end();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends one case exactly as written; the answer, or why there was none. */
function send(
  base: URL,
  item: Case,
  extra: Record<string, string>,
  timeoutMs: number,
): Promise<Reply | Error> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (value: Reply | Error) => {
      if (!settled) {
        settled = true;
        resolve(value);
      }
    };
    const headers: Record<string, string | string[]> = { ...item.headers, ...extra };
    if (item.upgrade) {
      Object.assign(headers, {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64"),
      });
    }
    if (item.body !== undefined && !item.chunked) headers["content-length"] = String(item.body.length);
    const req = request({
      host: base.hostname,
      port: base.port,
      method: item.method,
      path: item.path,
      headers,
      agent: item.upgrade ? false : agent,
      timeout: timeoutMs,
    });
    req.on("response", (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 256 * 1024) chunks.push(chunk);
      });
      response.on("end", () =>
        done({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      response.on("error", (error) => done(error));
    });
    req.on("upgrade", (response, socket) => {
      socket.destroy();
      done({ status: response.statusCode ?? 101, headers: response.headers, body: "" });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error) => done(error));
    if (item.body !== undefined && item.chunked) {
      for (let offset = 0; offset < item.body.length; offset += 64 * 1024) {
        req.write(item.body.subarray(offset, offset + 64 * 1024));
      }
      req.end();
    } else {
      req.end(item.body);
    }
  });
}

/** A 503 because PostgreSQL refused a new connection (max_connections reached). */
function connectionLimit(reply: Reply | Error): boolean {
  return !(reply instanceof Error) && reply.status === 503 && reply.body.includes("too many clients");
}

/** What is wrong with the answer to this case, if anything. */
function judge(item: Case, reply: Reply | Error): string | undefined {
  if (reply instanceof Error) return `no answer: ${reply.message}`;
  const { status } = reply;
  if (status >= 500) return `answered ${status}: ${reply.body.slice(0, 300)}`;
  if (status >= 400) {
    if (reply.headers["content-type"] !== "application/problem+json") {
      return `answered ${status} with content-type ${reply.headers["content-type"]}: ${reply.body.slice(0, 200)}`;
    }
    if (item.method !== "HEAD") {
      let problem: Record<string, unknown>;
      try {
        problem = JSON.parse(reply.body) as Record<string, unknown>;
      } catch {
        return `answered ${status} with a problem document that is not JSON: ${reply.body.slice(0, 200)}`;
      }
      if (
        problem.status !== status ||
        typeof problem.type !== "string" ||
        !/^urn:glyph-streams:problem:[a-z_]+$/.test(problem.type) ||
        typeof problem.title !== "string" ||
        problem.title === "" ||
        typeof problem.detail !== "string" ||
        problem.detail === ""
      ) {
        return `answered ${status} with an incomplete problem document: ${reply.body.slice(0, 300)}`;
      }
    }
    if (item.expect === "accept")
      return `refused a valid request with ${status}: ${reply.body.slice(0, 300)}`;
    return undefined;
  }
  if (item.expect === "refuse")
    return `accepted (${status}) a request that must be refused: ${reply.body.slice(0, 300)}`;
  if (status === 101 && !item.upgrade) return "switched protocols without being asked";
  if (status >= 200 && status < 300 && status !== 204 && item.method !== "HEAD") {
    const type = String(reply.headers["content-type"] ?? "");
    if (!type.startsWith("application/json")) return `answered ${status} with content-type ${type}`;
  }
  return undefined;
}

async function appendOk(
  streamId: string,
  body: unknown,
): Promise<{ versions: number[]; event_ids: string[] }> {
  const response = await fetch(new URL(`/streams/${streamId}/events`, worker.url), {
    method: "POST",
    headers: { "content-type": "application/json", ...adminAuthorization },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return (await response.json()) as { versions: number[]; event_ids: string[] };
}

async function rowsPerStream(streamIds: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let offset = 0; offset < streamIds.length; offset += 5000) {
    const result = await pool.query(
      `SELECT stream_id::text AS stream_id, count(*)::int AS n FROM workflow_events
        WHERE stream_id = ANY($1::uuid[]) GROUP BY stream_id`,
      [streamIds.slice(offset, offset + 5000)],
    );
    for (const row of result.rows as Array<{ stream_id: string; n: number }>)
      counts.set(row.stream_id, row.n);
  }
  return counts;
}

async function headsOf(streamIds: readonly string[]): Promise<Set<string>> {
  const heads = new Set<string>();
  for (let offset = 0; offset < streamIds.length; offset += 5000) {
    const result = await pool.query(
      "SELECT stream_id::text AS stream_id FROM workflow_streams WHERE stream_id = ANY($1::uuid[])",
      [streamIds.slice(offset, offset + 5000)],
    );
    for (const row of result.rows as Array<{ stream_id: string }>) heads.add(row.stream_id);
  }
  return heads;
}

it(
  `answers ${caseCount} malformed requests on every route with 4xx problems, never a 5xx, and writes nothing but valid input (${scale.name})`,
  async () => {
    console.log(
      `reliability bad input: scale=${scale.name} seed=${seed} (RELIABILITY_SEED=${seed} makes the same corpus)`,
    );
    const startedAt = Date.now();
    const rng = new Random(partSeed);

    // Streams only this corpus touches: one running, one completed, one failed for good, one to watch.
    const running = crypto.randomUUID();
    const firstBody = JSON.stringify({
      expected_version: "no_stream",
      events: [
        {
          event_id: crypto.randomUUID(),
          event: {
            type: "workflow_started",
            workflow_id: crypto.randomUUID(),
            config_version: "v1",
            started_at: AT,
          },
        },
        {
          event_id: crypto.randomUUID(),
          event: { type: "context_updated", key: "a", value: 1, updated_at: AT },
        },
        {
          event_id: crypto.randomUUID(),
          event: { type: "step_activated", step_id: "s", assigned_to: [], activated_at: AT },
        },
      ],
    });
    const first = await appendOk(running, firstBody);
    const completed = crypto.randomUUID();
    await appendOk(completed, {
      events: [
        {
          event: {
            type: "workflow_started",
            workflow_id: crypto.randomUUID(),
            config_version: "v1",
            started_at: AT,
          },
        },
        { event: { type: "workflow_completed", final_output: { ok: true }, completed_at: AT } },
      ],
    });
    const failed = crypto.randomUUID();
    await appendOk(failed, {
      events: [
        {
          event: {
            type: "workflow_started",
            workflow_id: crypto.randomUUID(),
            config_version: "v1",
            started_at: AT,
          },
        },
        { event: { type: "workflow_failed", error: "gone", recoverable: false, failed_at: AT } },
      ],
    });
    const watched = crypto.randomUUID();
    await appendOk(watched, {
      events: [
        {
          event: {
            type: "workflow_started",
            workflow_id: crypto.randomUUID(),
            config_version: "v1",
            started_at: AT,
          },
        },
        ...Array.from({ length: 20 }, (_, i) => ({
          event: { type: "context_updated", key: `k${i}`, value: i, updated_at: AT },
        })),
      ],
    });
    const streams: CorpusStreams = {
      running: { id: running, version: 3, eventIds: first.event_ids, firstBody },
      completed,
      failed,
      watched,
    };
    const shared = [running, completed, failed, watched];
    const before = await rowsPerStream(shared);

    const corpus = generateCorpus(caseCount, rng, streams);
    const violations: string[] = [];
    const statuses = new Map<string, number>();
    const written = new Map<string, number>();
    const writtenIds: string[] = [];
    let acceptedEither = 0;
    let connectionLimitRetries = 0;
    const byKind = new Map<string, Map<string, number>>();
    const byRouteStatus = new Map<string, Map<string, number>>();
    let next = 0;
    const deadline = startedAt + maxMs;
    const sender = async () => {
      while (next < corpus.length) {
        const item = corpus[next++];
        if (item === undefined) break;
        if (Date.now() > deadline) {
          violations.push(`case ${item.id}: not sent, the corpus ran past its ${maxMs} ms budget`);
          continue;
        }
        const extra = item.late ? await item.late() : {};
        let reply = await send(worker.url, item, extra, 20_000);
        // The server refusing a new connection (other users of a shared PostgreSQL can fill it)
        // happens before any statement, so nothing was written: wait and send the case again.
        for (let retry = 1; retry <= 5 && connectionLimit(reply); retry++) {
          connectionLimitRetries++;
          await sleep(400 * retry);
          reply = await send(worker.url, item, extra, 20_000);
        }
        const key = reply instanceof Error ? "no answer" : String(reply.status);
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        const routeStatuses = byRouteStatus.get(item.route) ?? new Map<string, number>();
        routeStatuses.set(key, (routeStatuses.get(key) ?? 0) + 1);
        byRouteStatus.set(item.route, routeStatuses);
        const kindKey = `${item.route} | ${item.kind} | ${item.expect}`;
        const seen = byKind.get(kindKey) ?? new Map<string, number>();
        seen.set(key, (seen.get(key) ?? 0) + 1);
        byKind.set(kindKey, seen);
        const problem = judge(item, reply);
        if (problem)
          violations.push(
            `case ${item.id} [${item.route} | ${item.kind}] ${item.method} ${item.path.slice(0, 120)}: ${problem}`,
          );
        if (
          !(reply instanceof Error) &&
          reply.status >= 200 &&
          reply.status < 300 &&
          item.expect === "either"
        )
          acceptedEither++;
        if (!(reply instanceof Error) && reply.status === 201 && item.target !== undefined) {
          const body = JSON.parse(reply.body) as {
            stream_id: string;
            versions: number[];
            event_ids: string[];
          };
          written.set(body.stream_id, (written.get(body.stream_id) ?? 0) + body.versions.length);
          writtenIds.push(...body.event_ids);
          if (body.stream_id !== item.target)
            violations.push(`case ${item.id}: wrote to ${body.stream_id}, not ${item.target}`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, sender));
    const sendingMs = Date.now() - startedAt;

    // Nothing written but what the accepted cases wrote: per stream, and every stream a case could touch.
    const targets = [
      ...new Set([...shared, ...corpus.flatMap((item) => (item.target ? [item.target] : []))]),
    ];
    const after = await rowsPerStream(targets);
    const heads = await headsOf(targets.filter((id) => !shared.includes(id)));
    let unexpectedRows = 0;
    for (const streamId of targets) {
      const delta = (after.get(streamId) ?? 0) - (before.get(streamId) ?? 0);
      const allowed = written.get(streamId) ?? 0;
      if (delta !== allowed) {
        unexpectedRows += delta - allowed;
        const cases = corpus
          .filter((item) => item.target === streamId)
          .map((item) => `${item.id} ${item.kind}`);
        violations.push(
          `stream ${streamId} gained ${delta} events, the corpus was acknowledged ${allowed} (cases: ${cases.join("; ")})`,
        );
      }
      if (!shared.includes(streamId) && allowed === 0 && heads.has(streamId)) {
        violations.push(`stream ${streamId} has a head row but no acknowledged event`);
      }
    }
    const storedIds = new Set<string>();
    if (writtenIds.length > 0) {
      const result = await pool.query(
        "SELECT event_id::text AS id FROM workflow_events WHERE event_id = ANY($1::uuid[])",
        [writtenIds],
      );
      for (const row of result.rows as Array<{ id: string }>) storedIds.add(row.id);
    }
    const lost = writtenIds.filter((id) => !storedIds.has(id)).length;

    const byRoute = new Map<string, number>();
    const byExpectation = new Map<string, number>();
    for (const item of corpus) {
      byRoute.set(item.route, (byRoute.get(item.route) ?? 0) + 1);
      byExpectation.set(item.expect, (byExpectation.get(item.expect) ?? 0) + 1);
    }
    const kindsSeen = new Set(corpus.map((item) => `${item.route} | ${item.kind}`));
    const figures = {
      scale: scale.name,
      seed,
      cases: corpus.length,
      mustRefuse: byExpectation.get("refuse") ?? 0,
      validControls: byExpectation.get("accept") ?? 0,
      mayBeValid: byExpectation.get("either") ?? 0,
      mayBeValidAccepted: acceptedEither,
      kinds: corpusKinds().length,
      kindsSeen: kindsSeen.size,
      byRoute: Object.fromEntries(
        [...byRoute.entries()].map(([route, count]) => [
          route,
          {
            cases: count,
            statuses: Object.fromEntries([...(byRouteStatus.get(route) ?? new Map()).entries()].sort()),
          },
        ]),
      ),
      statuses: Object.fromEntries([...statuses.entries()].sort()),
      streamsChecked: targets.length,
      eventsWrittenByValidCases: [...written.values()].reduce((sum, n) => sum + n, 0),
      unexpectedRows,
      lost,
      connectionLimitRetries,
      violations: violations.length,
      durationMs: Date.now() - startedAt,
      sendingMs,
    };
    console.log(`reliability bad input: ${JSON.stringify(figures)}`);
    if (process.env.RELIABILITY_VERBOSE === "1") {
      for (const [kind, seen] of [...byKind.entries()].sort()) {
        console.log(`  ${kind}: ${[...seen.entries()].map(([status, n]) => `${status}x${n}`).join(" ")}`);
      }
    }
    recordResults("bad-input", figures);

    const seedNote = `seed ${seed}: RELIABILITY_SEED=${seed} RELIABILITY_SCALE=${scale.name} makes the same corpus`;
    expect(violations.slice(0, 25), seedNote).toEqual([]);
    expect(unexpectedRows).toBe(0);
    expect(lost).toBe(0);
    expect(corpus.length).toBe(caseCount);
    expect([...statuses.keys()].filter((status) => status === "no answer" || Number(status) >= 500)).toEqual(
      [],
    );
    // Every route was hit, and the valid controls did write: the row count would see a write.
    for (const route of new Set(corpusKinds().map((kind) => kind.route)))
      expect(byRoute.get(route) ?? 0, route).toBeGreaterThan(0);
    expect(figures.eventsWrittenByValidCases).toBeGreaterThan(0);
    if (scale.name === "full") expect(kindsSeen.size).toBe(corpusKinds().length);
  },
  testTimeout(maxMs),
);
