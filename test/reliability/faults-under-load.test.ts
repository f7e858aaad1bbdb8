import { afterAll, expect, inject, it } from "vitest";
import type { NeonHttpProxy } from "../../scripts/local/neon-http-proxy";
import { httpEndpointToTestDatabase, openTestPool } from "../support/database";
import { adminAuthorization } from "../support/test-tokens";
import { composeEvents, started } from "./events";
import { Ledger, type LedgerEntry, verifyLedger } from "./ledger";
import {
  attempt,
  Random,
  readScale,
  recordResults,
  restartPostgres,
  seedFor,
  sleep,
  spread,
  testTimeout,
  WorkerUnderTest,
} from "./support";

// Part 2, faults under load: writers keep appending while the test breaks what is
// under them, in rotation: it cuts every database connection of the /sql endpoint the
// actors query (its server connections, busy or idle), takes the endpoint away and
// brings it back on the same port, throws the whole stack away
// (a new workerd: every actor and its cache gone) and, on a real PostgreSQL in the
// full run, restarts the server. After each failure a writer retries with the same
// event ids until it is acknowledged; at the end every append must have converged,
// and the database must hold each acknowledged event exactly once.
//
// PostgreSQL is restarted only when the run uses the machine's server (TEST_DATABASE_URL,
// restarted with pg_ctlcluster), and only in the full run (`npm run soak`) or with
// RELIABILITY_PG_RESTART=1: restarting a shared server in a short run inside `npm test`
// would also cut whatever else uses it. The embedded cluster belongs to the run's global
// setup, which has no restart; it is skipped there.

const scale = readScale();
const { seed, partSeed } = seedFor("faults");
const { writers, streams: streamCount, faults, gapMs, maxMs } = scale.faults;
const databaseKind = inject("databaseKind");
const restartsPostgres =
  databaseKind === "server" && (scale.name === "full" || process.env.RELIABILITY_PG_RESTART === "1");
const postgresNote =
  databaseKind === "embedded"
    ? "skipped: the run uses the embedded cluster, which the run's global setup owns"
    : restartsPostgres
      ? "included"
      : "skipped: short run inside npm test, where other files share the server (RELIABILITY_PG_RESTART=1 adds it)";

type FaultKind = "drop connections" | "endpoint down and up" | "stack restart" | "postgres restart";
const KINDS: readonly FaultKind[] = [
  "drop connections",
  "endpoint down and up",
  "stack restart",
  ...(restartsPostgres ? (["postgres restart"] as const) : []),
];

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

it(
  `loses and duplicates nothing while connections, the database endpoint, the stack${restartsPostgres ? " and PostgreSQL" : ""} fail under load (${scale.name}: ${faults} faults)`,
  async () => {
    console.log(
      `reliability faults: scale=${scale.name} seed=${seed} database=${databaseKind}; PostgreSQL restart ${postgresNote}`,
    );
    const startedAt = Date.now();
    const deadline = startedAt + maxMs;
    const rng = new Random(partSeed);
    let endpoint: NeonHttpProxy = await httpEndpointToTestDatabase();
    const { port, path } = endpoint;
    cleanup.push(() => endpoint.close());
    const worker = await WorkerUnderTest.start(inject("databaseWsProxy"), {
      DATABASE_TIMEOUT_MS: "2000",
      DATABASE_HTTP_ENDPOINT: endpoint.fetchEndpoint,
    });
    cleanup.push(() => worker.stop());

    const ledger = new Ledger();
    const streamIds = Array.from({ length: streamCount }, () => crypto.randomUUID());
    const known = new Map<string, number>();
    const ackTimes: number[] = [];
    let stopping = false;

    /** Sends the append until it is acknowledged: after a 503 or a lost connection the same body, after a 409 the same ids against the newer version. */
    const untilAcknowledged = async (entry: LedgerEntry, exact: boolean, random: Random): Promise<void> => {
      let expected: number | "any" = exact ? (known.get(entry.streamId) ?? 0) : "any";
      while (Date.now() < deadline + 60_000) {
        if (!worker.up) {
          await sleep(50);
          continue;
        }
        const settled = ledger.settle(
          entry,
          await attempt(
            new URL(`/streams/${entry.streamId}/events`, worker.url),
            {
              method: "POST",
              headers: { "content-type": "application/json", ...adminAuthorization },
              body: ledger.body(entry, expected),
            },
            { timeoutMs: 10_000 },
          ),
        );
        if (settled.kind === "acked") {
          ackTimes.push(Date.now());
          const last = settled.versions[settled.versions.length - 1] ?? 0;
          if (last > (known.get(entry.streamId) ?? 0)) known.set(entry.streamId, last);
          return;
        }
        if (settled.kind === "rejected") {
          if (exact && settled.status === 409 && settled.code === "concurrency_conflict") {
            ledger.reopen(entry);
            expected = Math.max(settled.actual ?? 0, known.get(entry.streamId) ?? 0);
            continue;
          }
          ledger.violation(entry, `refused with ${settled.status} ${settled.code}`);
          return;
        }
        if (settled.kind === "unexpected") return;
        await sleep(random.int(50, 250));
      }
    };

    for (const streamId of streamIds) {
      const entry = ledger.open(-1, streamId, [started()], "create");
      await untilAcknowledged(entry, true, rng);
      expect(entry.versions, `creating ${streamId}`).toEqual([1]);
    }

    const runWriter = async (writer: number) => {
      const random = new Random((partSeed + writer * 7919) >>> 0);
      for (let op = 0; !stopping && Date.now() < deadline; op++) {
        const streamId = random.pick(streamIds);
        const exact = random.chance(0.25);
        const { events } = composeEvents(random, writer, op, "never");
        await untilAcknowledged(
          ledger.open(writer, streamId, events, exact ? "exact" : "any"),
          exact,
          random,
        );
        await sleep(random.int(0, 15));
      }
    };
    const writing = Promise.all(Array.from({ length: writers }, (_, writer) => runWriter(writer)));

    const injected: Array<{ kind: FaultKind; at: number; endedAt: number }> = [];
    for (let index = 0; index < faults && Date.now() < deadline - 20_000; index++) {
      await sleep(rng.int(gapMs / 2, gapMs));
      const kind = KINDS[index % KINDS.length] ?? "drop connections";
      const at = Date.now();
      if (kind === "drop connections") {
        endpoint.dropConnections();
      } else if (kind === "endpoint down and up") {
        await endpoint.close();
        await sleep(rng.int(100, 800));
        endpoint = await httpEndpointToTestDatabase({ port, path });
      } else if (kind === "stack restart") {
        await worker.restart();
      } else {
        await restartPostgres();
      }
      injected.push({ kind, at, endedAt: Date.now() });
    }
    // Writers keep going a little after the last fault, then stop taking new work.
    await sleep(gapMs);
    stopping = true;
    await writing;
    const writingMs = Date.now() - startedAt;

    // Convergence: every acknowledged append, sent again, is answered 200 with the same versions.
    const acked = ledger.entries.filter((entry) => entry.outcome === "acked");
    const resend = scale.name === "short" ? acked : sample(acked, 3000, rng);
    let resendsConfirmed = 0;
    for (let offset = 0; offset < resend.length; offset += 8) {
      await Promise.all(
        resend.slice(offset, offset + 8).map(async (entry) => {
          const before = entry.versions;
          const answer = await attempt(
            new URL(`/streams/${entry.streamId}/events`, worker.url),
            {
              method: "POST",
              headers: { "content-type": "application/json", ...adminAuthorization },
              body: ledger.body(entry),
            },
            { timeoutMs: 15_000 },
          );
          const settled = ledger.settle(entry, answer);
          if (
            settled.kind !== "acked" ||
            settled.status !== 200 ||
            JSON.stringify(settled.versions) !== JSON.stringify(before)
          ) {
            ledger.violation(entry, `sent again after the faults, answered ${JSON.stringify(settled)}`);
          } else {
            resendsConfirmed++;
          }
        }),
      );
    }

    const pool = openTestPool(2);
    cleanup.push(() => pool.end());
    pool.on("error", () => undefined);
    const { problems, figures } = await verifyLedger(pool, ledger, streamIds, async (streamId) => {
      const response = await fetch(new URL(`/streams/${streamId}/state`, worker.url), {
        headers: adminAuthorization,
      });
      expect(response.status).toBe(200);
      return response.json();
    });

    const recoveries = injected.map(({ endedAt }) => {
      const next = ackTimes.find((time) => time >= endedAt);
      return next === undefined ? Number.POSITIVE_INFINITY : next - endedAt;
    });
    const byKind = Object.fromEntries(
      KINDS.map((kind) => [kind, injected.filter((fault) => fault.kind === kind).length]),
    );
    console.log(`reliability faults: ${JSON.stringify({ byKind, ...figures })}`);
    const seedNote = `seed ${seed}: RELIABILITY_SEED=${seed} RELIABILITY_SCALE=${scale.name} repeats this run's choices`;
    expect(ledger.violations.slice(0, 20), seedNote).toEqual([]);
    expect(problems.slice(0, 20), seedNote).toEqual([]);
    expect(figures.lost).toBe(0);
    expect(figures.duplicated).toBe(0);
    expect(figures.unexpected).toBe(0);
    expect(figures.unresolved, "every append was retried until acknowledged").toBe(0);
    expect(figures.rejected).toBe(0);
    expect(figures.acked).toBe(figures.appendsSent);
    expect(figures.eventsStored).toBe(figures.eventsAcknowledged);
    expect(resendsConfirmed).toBe(resend.length);
    // Every kind of fault happened, hit appends in flight, and the stack came back after each.
    expect(injected).toHaveLength(faults);
    for (const kind of KINDS) expect(byKind[kind], kind).toBeGreaterThan(0);
    expect(figures.ambiguousAttempts, "the faults made some attempts fail").toBeGreaterThan(0);
    for (const [index, recovery] of recoveries.entries()) {
      expect(recovery, `appends resumed after fault ${index + 1} (${injected[index]?.kind})`).toBeLessThan(
        20_000,
      );
    }

    const faultFigures = KINDS.map((kind) => {
      const of = injected
        .map((fault, index) => ({ fault, recovery: recoveries[index] ?? 0 }))
        .filter(({ fault }) => fault.kind === kind);
      return {
        kind,
        count: of.length,
        tookMs: spread(of.map(({ fault }) => fault.endedAt - fault.at)),
        recoveryMs: spread(of.map(({ recovery }) => recovery)),
      };
    });
    recordResults("faults", {
      scale: scale.name,
      seed,
      databaseKind,
      postgresRestart: postgresNote,
      writers,
      durationMs: Date.now() - startedAt,
      writingMs,
      faultsInjected: injected.length,
      faults: faultFigures,
      resendsConfirmed,
      ...figures,
    });
  },
  testTimeout(maxMs + 60_000),
);

/** Up to `count` items, chosen with the seeded generator. */
function sample<T>(items: readonly T[], count: number, rng: Random): T[] {
  if (items.length <= count) return [...items];
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = rng.int(0, index);
    [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
  }
  return copy.slice(0, count);
}
