import type { Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { openTestPool } from "../support/database";
import { adminAuthorization } from "../support/test-tokens";
import { composeEvents, started } from "./events";
import { Ledger, type LedgerEntry, type Settled, verifyLedger } from "./ledger";
import {
  attempt,
  Random,
  readScale,
  recordResults,
  seedFor,
  sleep,
  testTimeout,
  WorkerUnderTest,
} from "./support";

// Part 1, the ledger under load: several writers append over real HTTP to a few shared
// streams with random expected versions (any, the exact version they believe current,
// a stale one, stream_exists, If-Match), re-send acknowledged appends, send twins
// (the same append twice at once), and cut some requests from the client side, then
// retry them with the same event ids. Every answer goes into a ledger, which is then
// compared with the database read directly.

const scale = readScale();
const { seed, partSeed } = seedFor("ledger");
const { writers, streams: streamCount, opsPerWriter, maxMs } = scale.ledger;

let worker: WorkerUnderTest;
let pool: Pool;
beforeAll(async () => {
  worker = await WorkerUnderTest.start(inject("databaseWsProxy"));
  pool = openTestPool(2);
});
afterAll(async () => {
  await worker?.stop();
  await pool?.end();
});

type Mode = "any" | "exact" | "if-match" | "stale" | "no_stream" | "stream_exists" | "resend" | "twin";
const MODES: readonly Mode[] = [
  "any",
  "exact",
  "if-match",
  "stale",
  "no_stream",
  "stream_exists",
  "resend",
  "twin",
];
const MODE_WEIGHTS: ReadonlyArray<readonly [number, Mode]> = [
  [5, "any"],
  [4, "exact"],
  [1, "if-match"],
  [1, "stale"],
  [1, "no_stream"],
  [1, "stream_exists"],
  [1, "resend"],
  [1, "twin"],
];
const MAX_ATTEMPTS = 12;

interface Sent {
  body: string;
  headers: Record<string, string>;
}

it(
  `stores every acknowledged append exactly once under concurrent writers (${scale.name}: ${writers} writers x ${opsPerWriter} appends)`,
  async () => {
    console.log(
      `reliability ledger: scale=${scale.name} seed=${seed} (RELIABILITY_SEED=${seed} repeats the choices)`,
    );
    const startedAt = Date.now();
    const deadline = startedAt + maxMs;
    const ledger = new Ledger();
    const sent = new Map<number, Sent>();
    const streamIds = Array.from({ length: streamCount }, () => crypto.randomUUID());
    const known = new Map<string, number>();
    let cuts = 0;
    let resends = 0;
    let twins = 0;

    const post = (entry: LedgerEntry, request: Sent, abortAfterMs?: number) =>
      attempt(
        new URL(`/streams/${entry.streamId}/events`, worker.url),
        {
          method: "POST",
          headers: { "content-type": "application/json", ...adminAuthorization, ...request.headers },
          body: request.body,
        },
        { timeoutMs: 20_000, ...(abortAfterMs === undefined ? {} : { abortAfterMs }) },
      );

    /** Sends until a definite answer (or MAX_ATTEMPTS), always with the same body and event ids. */
    const deliver = async (
      entry: LedgerEntry,
      request: Sent,
      rng: Random,
      cutFirst?: number,
    ): Promise<Settled> => {
      let last: Settled = { kind: "ambiguous", why: "not sent" };
      for (let n = 0; n < MAX_ATTEMPTS && (n === 0 || Date.now() < deadline + 30_000); n++) {
        const cut = n === 0 ? cutFirst : undefined;
        if (cut !== undefined) cuts++;
        last = ledger.settle(entry, await post(entry, request, cut));
        if (last.kind !== "ambiguous") return last;
        await sleep(rng.int(20, 150));
      }
      return last;
    };

    const noteVersion = (streamId: string, version: number | undefined) => {
      if (version !== undefined && version > (known.get(streamId) ?? 0)) known.set(streamId, version);
    };

    for (const streamId of streamIds) {
      const entry = ledger.open(-1, streamId, [started()], "create");
      const request = { body: ledger.body(entry, "no_stream"), headers: {} };
      sent.set(entry.seq, request);
      const settled = await deliver(entry, request, new Random(partSeed));
      expect(settled, `creating ${streamId}`).toMatchObject({ kind: "acked", versions: [1] });
      noteVersion(streamId, 1);
    }

    const runWriter = async (writer: number) => {
      const rng = new Random((partSeed + writer * 7919) >>> 0);
      const mine: LedgerEntry[] = [];
      for (let op = 0; op < opsPerWriter && Date.now() < deadline; op++) {
        // Every writer starts with each mode once, so every path runs at every scale.
        // Then one append that breaks the rules and one cut by the client, then chance decides.
        const forced = op === MODES.length ? "invalid" : op === MODES.length + 1 ? "cut" : undefined;
        let mode: Mode =
          op < MODES.length
            ? (MODES[(op + writer) % MODES.length] ?? "any")
            : forced
              ? "any"
              : rng.weighted(MODE_WEIGHTS);
        if (mode === "resend") {
          const earlier = mine.length > 0 ? rng.pick(mine) : undefined;
          const request = earlier && sent.get(earlier.seq);
          if (earlier && request) {
            resends++;
            const before = earlier.versions;
            const settled = await deliver(earlier, request, rng);
            if (settled.kind !== "acked" || settled.status !== 200 || !settled.idempotent) {
              ledger.violation(earlier, `re-sent after acknowledgement, answered ${JSON.stringify(settled)}`);
            } else if (JSON.stringify(settled.versions) !== JSON.stringify(before)) {
              ledger.violation(
                earlier,
                `re-sent, answered versions ${settled.versions} instead of ${before}`,
              );
            }
            continue;
          }
          mode = "any";
        }
        const streamId = rng.pick(streamIds);
        const current = known.get(streamId) ?? 1;
        const composed = composeEvents(
          rng,
          writer,
          op,
          mode === "twin" ? "never" : forced === "invalid" ? "always" : "sometimes",
        );
        const entry = ledger.open(
          writer,
          streamId,
          composed.events,
          composed.invalid ? `${mode}+invalid` : mode,
        );
        let expected: number | "any" | "no_stream" | "stream_exists" | undefined;
        const headers: Record<string, string> = {};
        if (mode === "any") expected = rng.chance(0.5) ? "any" : undefined;
        else if (mode === "exact") expected = current;
        else if (mode === "if-match") headers["if-match"] = `"${current}"`;
        else if (mode === "stale") expected = Math.max(0, current - rng.int(1, 3));
        else if (mode === "no_stream") expected = "no_stream";
        else if (mode === "stream_exists") expected = "stream_exists";
        const request = { body: ledger.body(entry, expected), headers };
        sent.set(entry.seq, request);

        let settled: Settled;
        if (mode === "twin") {
          twins++;
          const [a, b] = await Promise.all([deliver(entry, request, rng), deliver(entry, request, rng)]);
          settled = a.kind === "acked" ? a : b;
          if (a.kind !== "acked" || b.kind !== "acked") {
            ledger.violation(entry, `twin appends answered ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
          }
        } else {
          const cut = forced === "cut" || rng.chance(0.12) ? rng.int(0, 25) : undefined;
          settled = await deliver(entry, request, rng, cut);
        }

        const exactVersion = mode === "exact" || mode === "if-match" ? current : undefined;
        if (settled.kind === "acked") {
          mine.push(entry);
          noteVersion(streamId, settled.versions[settled.versions.length - 1]);
          if (composed.invalid)
            ledger.violation(entry, "an append breaking the workflow rules was acknowledged");
          if (mode === "stale" || mode === "no_stream")
            ledger.violation(entry, "a stale expected version was acknowledged");
          if (exactVersion !== undefined && settled.versions[0] !== exactVersion + 1) {
            ledger.violation(
              entry,
              `expected version ${exactVersion} but stored from ${settled.versions[0]}`,
            );
          }
        } else if (settled.kind === "rejected") {
          noteVersion(streamId, settled.actual);
          const conflict = settled.status === 409 && settled.code === "concurrency_conflict";
          const rules = settled.status === 422 && settled.code === "invalid_event_sequence";
          const mayConflict =
            mode === "exact" || mode === "if-match" || mode === "stale" || mode === "no_stream";
          if (!((conflict && mayConflict) || (rules && composed.invalid))) {
            ledger.violation(entry, `refused with ${settled.status} ${settled.code}`);
          }
          if (
            conflict &&
            typeof expected === "number" &&
            (settled.actual === undefined || settled.actual <= expected)
          ) {
            ledger.violation(entry, `409 for expected ${expected} names actual ${settled.actual}`);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: writers }, (_, writer) => runWriter(writer)));

    // Anything still without a definite answer is retried, same event ids, until it converges.
    const retryRng = new Random(partSeed ^ 0x5bd1e995);
    for (const entry of ledger.entries.filter((item) => item.outcome === "pending")) {
      const request = sent.get(entry.seq);
      if (request) await deliver(entry, request, retryRng);
    }
    const writingMs = Date.now() - startedAt;

    const { problems, figures } = await verifyLedger(pool, ledger, streamIds, async (streamId) => {
      const response = await fetch(new URL(`/streams/${streamId}/state`, worker.url), {
        headers: adminAuthorization,
      });
      expect(response.status).toBe(200);
      return response.json();
    });
    console.log(`reliability ledger: ${JSON.stringify(figures)}`);
    const seedNote = `seed ${seed}: RELIABILITY_SEED=${seed} RELIABILITY_SCALE=${scale.name} repeats this run's choices`;
    expect(ledger.violations.slice(0, 20), seedNote).toEqual([]);
    expect(problems.slice(0, 20), seedNote).toEqual([]);
    expect(figures.lost).toBe(0);
    expect(figures.duplicated).toBe(0);
    expect(figures.unexpected).toBe(0);
    expect(figures.unresolved, "every append converged to a definite answer").toBe(0);
    // The run exercised what it claims to: conflicts, rule refusals, cuts, repeats, snapshots.
    expect(figures.acked).toBeGreaterThan(writers * 4);
    expect(ledger.statuses.get("409") ?? 0).toBeGreaterThan(0);
    expect(ledger.statuses.get("422") ?? 0).toBeGreaterThan(0);
    expect(ledger.statuses.get("200") ?? 0).toBeGreaterThan(0);
    expect(cuts).toBeGreaterThan(0);
    expect(figures.eventsChecked).toBe(figures.eventsAcknowledged);
    expect(figures.eventsStored, "nothing stored beyond the acknowledged events").toBe(
      figures.eventsAcknowledged,
    );

    recordResults("ledger", {
      scale: scale.name,
      seed,
      writers,
      durationMs: Date.now() - startedAt,
      writingMs,
      clientCuts: cuts,
      resends,
      twins,
      ...figures,
    });
  },
  testTimeout(maxMs),
);
