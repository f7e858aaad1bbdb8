import type { PeerCase, PeerComparisonResult, StoreName, StoreRun } from "../scenarios/peer-comparison";
import { TRIVIAL_IN_DEV_ENVIRONMENT } from "../scenarios/stream-throughput";
import { BENCH_CONNECTIONS_WAIT_MS, BENCH_ENDPOINT_IDLE_MS } from "./plan";
import type { BenchResults } from "./results";

// Section 7 of docs/benchmarks.md: glyph-streams beside the peer (Emmett), from a run's
// results. Every ratio is glyph-streams ÷ peer; the verdict column says which side is
// ahead for that measure (higher appends/s is better, lower latency is better).

const PEER = "peer (Emmett)";
const CONNECTIONS_CASE = "all cases";
const GLYPH = "glyph-streams";
/** Within ±5 % the two are called level: this machine's noise is larger than that. */
const LEVEL = 0.05;

const num = (value: number | undefined, digits = 1) =>
  value === undefined || !Number.isFinite(value)
    ? "–"
    : Math.abs(value) >= 100
      ? Math.round(value).toLocaleString("en-US")
      : value.toFixed(digits);
const ratioText = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value)
    ? "–"
    : `${value >= 10 ? value.toFixed(0) : value.toFixed(2)}×`;

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

export type Verdict = "ahead" | "behind" | "level" | "–";

interface Measure {
  case: string;
  measure: string;
  glyph: number | undefined;
  peer: number | undefined;
  better: "higher" | "lower";
  digits?: number;
  /** Shown instead of the ratio (e.g. when one side is 0). */
  note?: string;
}

export function verdictOf(measure: Measure): Verdict {
  const { glyph, peer } = measure;
  if (glyph === undefined || peer === undefined || !Number.isFinite(glyph) || !Number.isFinite(peer))
    return "–";
  if (glyph === peer) return "level";
  const base = Math.max(Math.abs(glyph), Math.abs(peer));
  if (Math.abs(glyph - peer) <= LEVEL * base) return "level";
  const glyphBetter = measure.better === "higher" ? glyph > peer : glyph < peer;
  return glyphBetter ? "ahead" : "behind";
}

const runOf = (item: PeerCase | undefined, store: StoreName) => item?.[store];

/**
 * CPU ms per request sent: the service and PostgreSQL. glyph-streams' service is workerd
 * (the Worker and its actors) plus the database host child (bench/lib/database-host.ts:
 * the local /sql endpoint the actors send their statements to, and the WebSocket bridge,
 * which during these runs carries only the bench's own sampling queries); `workerd` is
 * workerd alone, what production would bill as the Worker's CPU. The peer's is its Node
 * process (its driver included).
 */
export function cpuPerRequest(
  run: StoreRun | undefined,
): { service: number; workerd: number; database: number } | undefined {
  if (!run || run.requests === 0) return undefined;
  const seconds = run.cpu.seconds;
  const service =
    run.store === "glyph" ? (seconds.workerd ?? 0) + (seconds.databaseHost ?? 0) : (seconds.peer ?? 0);
  return {
    service: (service * 1000) / run.requests,
    workerd: ((run.store === "glyph" ? (seconds.workerd ?? 0) : 0) * 1000) / run.requests,
    database: ((seconds.postgres ?? 0) * 1000) / run.requests,
  };
}

const refusedShare = (run: StoreRun | undefined) => {
  if (!run) return undefined;
  const refused = Object.values(run.failedByKind).reduce((sum, n) => sum + n, 0);
  return refused + run.okRequests === 0 ? undefined : (refused / (refused + run.okRequests)) * 100;
};
const perAccepted = (run: StoreRun | undefined, status: string) => {
  if (!run) return undefined;
  const refused = run.failedByKind[status] ?? 0;
  return run.okRequests === 0 ? Number.POSITIVE_INFINITY : refused / run.okRequests;
};
const refusalsPerSuccess = (run: StoreRun | undefined) => perAccepted(run, "409");
const statementsPerAppend = (run: StoreRun | undefined) =>
  run?.statements === undefined || run.acceptedInAll === 0 ? undefined : run.statements / run.acceptedInAll;

/** The side-by-side measures, one per line of the headline table. */
export function peerMeasures(peer: PeerComparisonResult): Measure[] {
  const measures: Measure[] = [];
  const byId = (id: string) => peer.cases.find((item) => item.id === id);
  for (const item of peer.cases) {
    const glyph = runOf(item, "glyph");
    const other = runOf(item, "peer");
    if (item.skipped !== undefined) continue;
    switch (item.kind) {
      case "short":
      case "long":
        measures.push(
          {
            case: item.label,
            measure: "p50 ms",
            glyph: glyph?.latency.p50,
            peer: other?.latency.p50,
            better: "lower",
          },
          {
            case: item.label,
            measure: "p99 ms",
            glyph: glyph?.latency.p99,
            peer: other?.latency.p99,
            better: "lower",
          },
          {
            case: item.label,
            measure: "appends/s",
            glyph: glyph?.appendsPerSecond,
            peer: other?.appendsPerSecond,
            better: "higher",
            digits: 0,
          },
        );
        break;
      case "any":
        measures.push(
          {
            case: item.label,
            measure: "accepted appends/s",
            glyph: glyph?.appendsPerSecond,
            peer: other?.appendsPerSecond,
            better: "higher",
            digits: 0,
          },
          {
            case: item.label,
            measure: "refused or failed, % of answers",
            glyph: refusedShare(glyph),
            peer: refusedShare(other),
            better: "lower",
            digits: 0,
            note: "",
          },
        );
        break;
      case "any-emmett-retry": {
        const plain = runOf(byId("any"), "glyph");
        measures.push(
          {
            case: item.label,
            measure: "accepted appends/s (glyph-streams: the `any` row above)",
            glyph: plain?.appendsPerSecond,
            peer: other?.appendsPerSecond,
            better: "higher",
            digits: 0,
          },
          {
            case: item.label,
            measure: "refused or failed, % of answers",
            glyph: refusedShare(plain),
            peer: refusedShare(other),
            better: "lower",
            digits: 0,
            note: "",
          },
        );
        break;
      }
      case "exact-retry":
        measures.push(
          {
            case: item.label,
            measure: "accepted appends/s",
            glyph: glyph?.appendsPerSecond,
            peer: other?.appendsPerSecond,
            better: "higher",
            digits: 0,
          },
          {
            case: item.label,
            measure: "409 refusals per accepted append",
            glyph: refusalsPerSuccess(glyph),
            peer: refusalsPerSuccess(other),
            better: "lower",
          },
          {
            case: item.label,
            measure: `writers that made progress (of ${item.writers})`,
            glyph: glyph?.writersProgressed,
            peer: other?.writersProgressed,
            better: "higher",
            digits: 0,
          },
        );
        break;
      case "streams":
        measures.push(
          {
            case: item.label,
            measure: "appends/s",
            glyph: glyph?.appendsPerSecond,
            peer: other?.appendsPerSecond,
            better: "higher",
            digits: 0,
          },
          {
            case: item.label,
            measure: "p50 ms",
            glyph: glyph?.latency.p50,
            peer: other?.latency.p50,
            better: "lower",
          },
          {
            case: item.label,
            measure: "service CPU ms per append (glyph-streams: workerd + the local /sql endpoint)",
            glyph: cpuPerRequest(glyph)?.service,
            peer: cpuPerRequest(other)?.service,
            better: "lower",
            digits: 2,
          },
        );
        break;
      case "conditional":
        measures.push(
          {
            case: item.label,
            measure: "accepted appends/s",
            glyph: glyph?.appendsPerSecond,
            peer: other?.appendsPerSecond,
            better: "higher",
            digits: 0,
          },
          {
            case: item.label,
            measure: "409 version conflicts per accepted append (sent again)",
            glyph: refusalsPerSuccess(glyph),
            peer: refusalsPerSuccess(other),
            better: "lower",
            digits: 2,
          },
          {
            case: item.label,
            measure: "412 per accepted append (the workflow had moved on: not retried)",
            glyph: perAccepted(glyph, "412"),
            peer: perAccepted(other, "412"),
            better: "lower",
            digits: 2,
          },
          {
            case: item.label,
            measure: `writers that made progress (of ${item.writers})`,
            glyph: glyph?.writersProgressed,
            peer: other?.writersProgressed,
            better: "higher",
            digits: 0,
          },
        );
        break;
    }
  }
  const perAppend = (store: StoreName) => peer.perAppend.find((row) => row.store === store);
  const glyphCounts = perAppend("glyph");
  const peerCounts = perAppend("peer");
  if (peer.statementsMethod === "pg_stat_statements") {
    measures.push({
      case: "one writer, appends one after another",
      measure: "statements per append (pg_stat_statements)",
      glyph: glyphCounts?.statements === undefined ? undefined : glyphCounts.statements / glyphCounts.appends,
      peer: peerCounts?.statements === undefined ? undefined : peerCounts.statements / peerCounts.appends,
      better: "lower",
      digits: 2,
    });
  } else {
    measures.push({
      case: "one writer, appends one after another",
      measure: "transactions per append (pg_stat_database)",
      glyph:
        glyphCounts?.transactions === undefined ? undefined : glyphCounts.transactions / glyphCounts.appends,
      peer: peerCounts?.transactions === undefined ? undefined : peerCounts.transactions / peerCounts.appends,
      better: "lower",
      digits: 2,
    });
  }
  const peak = (store: StoreName) =>
    Math.max(0, ...peer.cases.map((item) => item[store]?.peakConnections ?? 0).filter(Number.isFinite));
  measures.push({
    case: CONNECTIONS_CASE,
    measure: "most server connections at once",
    glyph: peak("glyph"),
    peer: peak("peer"),
    better: "lower",
    digits: 0,
  });
  return measures;
}

/** The Targets table's row for the peer. */
export function peerTargetRow(results: BenchResults): string[] | undefined {
  if (!results.peer) return undefined;
  const measures = peerMeasures(results.peer).filter((measure) => verdictOf(measure) !== "–");
  const behind = measures.filter((measure) => verdictOf(measure) === "behind");
  const ahead = measures.filter((measure) => verdictOf(measure) === "ahead").length;
  const level = measures.length - ahead - behind.length;
  return [
    "ahead of the peer (Emmett) in every side-by-side row of section 7",
    `ahead in ${ahead}, level in ${level}, behind in ${behind.length} of ${measures.length}` +
      (behind.length > 0 ? ` (behind: ${behind.map((m) => `${m.case}, ${m.measure}`).join("; ")})` : ""),
    behind.length === 0 ? "**met**" : "**not met**",
  ];
}

/**
 * Issue 11's baseline for its CPU target (docs/benchmarks.md of 2026-11-26): service CPU
 * per append with 64 streams × 1 writer, workerd + the WebSocket bridge, and the runtime's
 * floor then (the trivial Worker with 64 requests in flight, section 2's reference table).
 */
const ISSUE_11_BASELINE = { serviceMs: 5.5, floorMs: 0.59 };
/** "Cut to a quarter of today's": the CPU above the floor the target allows. */
const ISSUE_11_CPU_LIMIT_MS = (ISSUE_11_BASELINE.serviceMs - ISSUE_11_BASELINE.floorMs) / 4;

const issueVerdict = (met: boolean | undefined) =>
  met === undefined ? "not measured" : met ? "**met**" : "**not met**";

/** The runtime's floor: the trivial Worker's workerd CPU per request with 64 (or so) in flight (section 2). */
function floorPerRequest(
  results: BenchResults,
  prefix = "a trivial",
): { ms: number; inFlight: number } | undefined {
  const row = results.throughput?.reference.find((r) => r.label.startsWith(prefix));
  if (!row || row.requests === 0) return undefined;
  return { ms: ((row.cpu.seconds.workerd ?? 0) * 1000) / row.requests, inFlight: row.writers };
}

/**
 * Where a one-at-a-time append's time goes locally that the peer's path does not have
 * (section 1, p50s): the runtime itself, and the statement's trip through the /sql
 * endpoint (timed from Node, over HTTP and over the bridge).
 */
function shortPathParts(results: BenchResults): string {
  const p50 = (id: string) => results.latency?.paths.find((path) => path.id === id)?.summary.p50;
  const runtime = p50("runtime-only");
  const overHttp = p50("store-append-http");
  const overBridge = p50("store-append");
  if (runtime === undefined || overHttp === undefined || overBridge === undefined) return "";
  return (
    `. Every glyph-streams append passes the runtime (the trivial Worker: ${num(runtime, 2)} ms p50, section 1) and sends its statement to the local /sql endpoint, ` +
    `a Node process standing in for Neon on the same cores: from Node that statement takes ${num(overHttp, 2)} ms p50 over HTTP against ${num(overBridge, 2)} ms over the bridge (section 1). ` +
    "The peer's path has neither hop: one Node process, its statements on a pooled TCP connection"
  );
}

/** Issue 11's targets, each measured in this run: a heading row, then one row per target. */
export function issue11TargetRows(results: BenchResults): string[][] {
  const peer = results.peer;
  const byKind = (kind: PeerCase["kind"]) =>
    peer?.cases.find((item) => item.kind === kind && item.skipped === undefined);
  const rows: string[][] = [
    ["**Issue 11** (the stream actor's cost; against the peer, Emmett, in section 7)", "", ""],
  ];

  // a. CPU per append above the runtime's floor.
  const streams = byKind("streams");
  const glyphCpu = cpuPerRequest(streams?.glyph);
  const floor = floorPerRequest(results);
  const limited = floorPerRequest(results, "the trivial Worker calling a Rate Limiting binding");
  const devFloor = floorPerRequest(results, TRIVIAL_IN_DEV_ENVIRONMENT);
  // How much slower or faster this machine is than the issue's, by the same trivial Worker in the same runtime.
  const scaledLimit = devFloor
    ? ISSUE_11_CPU_LIMIT_MS * (devFloor.ms / ISSUE_11_BASELINE.floorMs)
    : undefined;
  const limit = ISSUE_11_CPU_LIMIT_MS;
  const aboveWorkerd = glyphCpu && floor ? glyphCpu.workerd - floor.ms : undefined;
  const aboveService = glyphCpu && floor ? glyphCpu.service - floor.ms : undefined;
  // The database host child also runs the bridge, which carries the bench's own sampling
  // queries: its rate while the peer ran the same case (glyph-streams idle) estimates that share.
  const glyphRun = streams?.glyph;
  const peerRun = streams?.peer;
  const samplingMs =
    glyphRun && peerRun && peerRun.cpu.wallSeconds > 0 && glyphRun.requests > 0
      ? (((peerRun.cpu.seconds.databaseHost ?? 0) / peerRun.cpu.wallSeconds) *
          glyphRun.cpu.wallSeconds *
          1000) /
        glyphRun.requests
      : undefined;
  rows.push([
    `11a. CPU per append above the runtime's floor cut to a quarter of the issue's (${streams?.label ?? "64 streams × 1 writer"}): ` +
      `then ${ISSUE_11_BASELINE.serviceMs} ms (workerd + the WebSocket bridge) − ${ISSUE_11_BASELINE.floorMs} ms floor = ${(ISSUE_11_BASELINE.serviceMs - ISSUE_11_BASELINE.floorMs).toFixed(2)} ms, so ≤ ${limit.toFixed(2)} ms above this run's floor`,
    glyphCpu && floor && aboveWorkerd !== undefined && aboveService !== undefined
      ? `**${aboveWorkerd.toFixed(2)} ms** above the floor in workerd alone (${glyphCpu.workerd.toFixed(2)} ms per append − ${floor.ms.toFixed(2)} ms, the trivial Worker run the same way with ${floor.inFlight} requests in flight, section 2); ` +
        `${aboveService.toFixed(2)} ms with the local /sql endpoint's process (${glyphCpu.service.toFixed(2)} ms per append` +
        (samplingMs === undefined
          ? ""
          : `, of which about ${samplingMs.toFixed(2)} ms is the bench's own sampling through the bridge in the same process, judged by the peer's run`) +
        "), which is local only: in production Neon runs that part. " +
        (limited && floor
          ? `Production's Worker also makes one Rate Limiting call per request, which this local run leaves out (decision 27); miniflare's stand-in for that call costs ${(limited.ms - floor.ms).toFixed(2)} ms here (section 2), production's binding is Cloudflare's own. `
          : "") +
        "The verdict is on workerd alone, what production would bill as the Worker's CPU. " +
        (devFloor
          ? `The issue's milliseconds were taken on another machine, in wrangler's dev environment, where the trivial Worker cost ${ISSUE_11_BASELINE.floorMs} ms; here it costs ${devFloor.ms.toFixed(2)} ms in that environment (section 2), so scaled to this machine the limit is ${scaledLimit?.toFixed(2)} ms`
          : "")
      : glyphCpu === undefined
        ? "– (the peer scenario's 64-streams case did not run)"
        : "– (section 2's reference table, the floor, did not run)",
    aboveWorkerd === undefined
      ? issueVerdict(undefined)
      : `${issueVerdict(aboveWorkerd <= limit)} in ms` +
        (scaledLimit === undefined
          ? ""
          : `; ${issueVerdict(aboveWorkerd <= scaledLimit)} scaled to this machine`),
  ]);

  // b. One client on a short stream: p50 within 1.5× of the peer's.
  const short = byKind("short");
  const shortGlyph = short?.glyph?.latency.p50;
  const shortPeer = short?.peer?.latency.p50;
  const shortBoth = shortGlyph !== undefined && shortPeer !== undefined && shortPeer > 0;
  rows.push([
    `11b. one client on a short stream within 1.5× of the peer's p50 (${short?.label ?? "1 writer, short streams"})`,
    shortBoth
      ? `p50 ${num(shortGlyph, 2)} ms vs the peer's ${num(shortPeer, 2)} ms: **${ratioText(shortGlyph / shortPeer)}** (limit ${num(1.5 * shortPeer, 2)} ms)` +
        shortPathParts(results)
      : "–",
    issueVerdict(shortBoth ? shortGlyph <= 1.5 * shortPeer : undefined),
  ]);

  // c. 64 streams × 1 writer at least level with the peer.
  const rateMeasure: Measure | undefined = streams
    ? {
        case: streams.label,
        measure: "appends/s",
        glyph: streams.glyph?.appendsPerSecond,
        peer: streams.peer?.appendsPerSecond,
        better: "higher",
      }
    : undefined;
  const rateVerdict = rateMeasure ? verdictOf(rateMeasure) : "–";
  const glyphStreamsCpu = cpuPerRequest(streams?.glyph);
  const peerStreamsCpu = cpuPerRequest(streams?.peer);
  rows.push([
    `11c. ${streams?.label ?? "64 streams × 1 writer"} at least level with the peer (appends/s; level = within ${LEVEL * 100} %)`,
    rateMeasure && rateVerdict !== "–"
      ? `${num(rateMeasure.glyph, 0)} vs ${num(rateMeasure.peer, 0)} appends/s: **${ratioText((rateMeasure.glyph ?? 0) / (rateMeasure.peer ?? 1))}** (${rateVerdict})` +
        (glyphStreamsCpu && peerStreamsCpu
          ? `. CPU per append on this machine's ${results.machine.cores} cores: glyph-streams ${num(glyphStreamsCpu.workerd, 2)} ms in workerd, ` +
            `${num(glyphStreamsCpu.service - glyphStreamsCpu.workerd, 2)} ms in the local /sql endpoint (Neon's part in production) and ${num(glyphStreamsCpu.database, 2)} ms in PostgreSQL; ` +
            `the peer ${num(peerStreamsCpu.service, 2)} ms in its Node process and ${num(peerStreamsCpu.database, 2)} ms in PostgreSQL. ` +
            `Without the endpoint's share, which production does not run on the Worker's machine, glyph-streams' own is ${num(glyphStreamsCpu.workerd + glyphStreamsCpu.database, 2)} ms against the peer's ${num(peerStreamsCpu.service + peerStreamsCpu.database, 2)} ms`
          : "")
      : "–",
    issueVerdict(rateVerdict === "–" ? undefined : rateVerdict !== "behind"),
  ]);

  // d. Refusals cheap enough: 64 exact-version writers on one stream reach the peer's rate.
  const exact = byKind("exact-retry");
  const exactGlyph = exact?.glyph;
  const exactPeer = exact?.peer;
  const refusals = (run: StoreRun | undefined) =>
    run === undefined
      ? "–"
      : Object.entries(run.failedByKind)
          .map(([kind, n]) => `${n.toLocaleString("en-US")} × ${kind}`)
          .join(", ") || "none";
  const exactBoth = exactGlyph !== undefined && exactPeer !== undefined;
  const exactLevel =
    exactBoth &&
    verdictOf({
      case: "",
      measure: "",
      glyph: exactGlyph.appendsPerSecond,
      peer: exactPeer.appendsPerSecond,
      better: "higher",
    }) === "level";
  rows.push([
    `11d. refused requests (409, 422) cheap enough that ${exact?.writers ?? 64} exact-version writers on one stream reach at least the peer's rate (${exact?.label ?? "exact expected version, retry on 409"}; accepted appends/s)`,
    exactBoth
      ? `${num(exactGlyph.appendsPerSecond, 1)} vs ${num(exactPeer.appendsPerSecond, 1)} accepted appends/s: **${ratioText(exactPeer.appendsPerSecond > 0 ? exactGlyph.appendsPerSecond / exactPeer.appendsPerSecond : undefined)}** ` +
        `(refused in the window: glyph-streams ${refusals(exactGlyph)}, the peer ${refusals(exactPeer)})` +
        (exactGlyph.appendsPerSecond < exactPeer.appendsPerSecond && exactLevel
          ? `; within ${LEVEL * 100} % (level by section 7's rule), but below`
          : "")
      : "–",
    issueVerdict(exactBoth ? exactGlyph.appendsPerSecond >= exactPeer.appendsPerSecond : undefined),
  ]);

  // e. No starvation.
  rows.push([
    `11e. no starvation: with ${exact?.writers ?? 64} writers using exact expected versions on one stream, every writer completes appends within the window`,
    exactGlyph && exact
      ? `**${exactGlyph.writersProgressed} of ${exact.writers}** writers had an append accepted in the ${(peer?.windowMs ?? 0) / 1000} s window${exactPeer ? ` (the peer: ${exactPeer.writersProgressed} of ${exact.writers})` : ""}`
      : "–",
    issueVerdict(exactGlyph && exact ? exactGlyph.writersProgressed === exact.writers : undefined),
  ]);
  return rows;
}

/** Section 7. */
export function peerSection(results: BenchResults, chartLink: (name: string) => string): string[] {
  const peer = results.peer;
  if (!peer) return [];
  const versions = results.machine.versions;
  const measures = peerMeasures(peer);
  const lines: string[] = [
    "## 7. Side by side with the peer (Emmett)",
    "",
    `The peer a user would pick instead: Emmett ${versions["@event-driven-io/emmett"] ?? "?"} ` +
      `(\`@event-driven-io/emmett\` + \`@event-driven-io/emmett-postgresql\` ${versions["@event-driven-io/emmett-postgresql"] ?? "?"}, ` +
      `on the \`pg\` driver ${versions.pg ?? "?"} with the pool Emmett makes: pg's default of at most 10 connections) behind a small Node HTTP server, ` +
      "`bench/peer/emmett-server.ts`, in a child process of its own (Node " +
      `${results.machine.node}). It serves the same routes with the same request and response shapes (POST /streams/:id/events answering 201 with \`version\`, ` +
      "409 with `expected`/`actual`, 422 when the workflow rules refuse; GET /streams/:id/state), checks the same bearer token and validates the body with the same zod schema as the Worker. " +
      "Each append is written as an Emmett user writes a command handler: Emmett's `CommandHandler` reads the whole stream and folds it (`aggregateStream`) with this repository's reducer " +
      "(src/state/apply-event.ts) as `evolve`, the decision applies the reducer's rules to the new events, and `appendToStream` writes them with the expected version " +
      "(BEGIN, Emmett's `emt_append_to_stream` function, COMMIT). `any` gives Emmett no expected version, so the handler expects the version it read (its default), and retries on a version conflict are off " +
      "(Emmett's default; one row turns on its own policy, `retry: {onVersionConflict: true}`). " +
      `Its database \`${peer.peerDatabase}\` is on the same server as glyph-streams' \`${peer.glyphDatabase}\`; it connects over TCP with \`pg\`, ` +
      "while glyph-streams' actors send each statement as one HTTP request (`neon()`) to the local /sql endpoint (scripts/local/neon-http-proxy.ts, standing in for Neon's), " +
      "which runs it on its own pooled `pg` connections to the same server, as everywhere on this page.",
    "",
    `Each case runs on both, one after the other (the order alternates from case to case), with the same closed loop (${peer.windowMs / 1000} s window after ${peer.warmupMs / 1000} s warm-up), ` +
      "the same HTTP client and the same events (one `context_updated` per append); each store's streams are made through its own append route (500 events per append for the long ones). " +
      "In the exact-version case every writer retries at once with the version the 409 names (the peer's 409 names it too); glyph-streams' writers also send back the 409's `turn`, as its client does (ARCHITECTURE, decision 23: the writer refused first wins next, and the others' retries wait in the actor meanwhile). " +
      "Ratios are glyph-streams ÷ peer; **ahead** means glyph-streams is better on that measure by more than 5 %, **level** within 5 %.",
    "",
    table(
      ["case", "measure", GLYPH, PEER, "glyph-streams ÷ peer", "glyph-streams is"],
      [
        ...measures.map((measure) => [
          measure.case,
          measure.measure,
          num(measure.glyph, measure.digits ?? 1),
          num(measure.peer, measure.digits ?? 1),
          measure.note !== undefined
            ? "–"
            : ratioText(
                measure.glyph !== undefined && measure.peer !== undefined && measure.peer !== 0
                  ? measure.glyph / measure.peer
                  : undefined,
              ),
          verdictOf(measure) === "–" ? "–" : `**${verdictOf(measure)}**`,
        ]),
        ...peer.cases
          .filter((item) => item.skipped !== undefined)
          .map((item) => [item.label, "–", "not measured", "not measured", "–", item.skipped ?? ""]),
      ],
    ),
    "",
    "Every run in detail (latencies and rates count what was answered inside the window; CPU, statements and connections cover the whole run, warm-up included):",
    "",
    table(
      [
        "case",
        "store",
        "appends/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "refused / failed in the window",
        "writers progressed",
        "stream version, start → end",
        "service CPU ms per request",
        "PostgreSQL CPU ms per request",
        "statements per accepted append",
        "most connections at once",
      ],
      peer.cases.flatMap((item) =>
        (["glyph", "peer"] as const)
          .map((store) => item[store])
          .filter((run): run is StoreRun => run !== undefined)
          .map((run) => {
            const cpu = cpuPerRequest(run);
            const refused = Object.entries(run.failedByKind)
              .map(([kind, n]) => `${n.toLocaleString("en-US")} × ${kind}`)
              .join(", ");
            return [
              item.label,
              run.store === "glyph" ? GLYPH : PEER,
              num(run.appendsPerSecond, 0),
              num(run.latency.p50),
              num(run.latency.p95),
              num(run.latency.p99),
              (refused || "0") +
                (run.stateReads > 0 ? ` (+ ${run.stateReads} GET /state for the version)` : ""),
              `${run.writersProgressed} of ${item.writers}`,
              run.streamVersions
                ? `${run.streamVersions.before.toLocaleString("en-US")} → ${run.streamVersions.after.toLocaleString("en-US")}`
                : "–",
              num(cpu?.service, 2),
              num(cpu?.database, 2),
              num(statementsPerAppend(run), 2),
              String(run.peakConnections),
            ];
          }),
      ),
    ),
    "",
    ...countingNotes(peer),
    "",
    chartLink("peer-throughput.svg"),
    "",
    ...whereTheTimeGoes(peer, measures),
    "",
  ];
  return lines;
}

function countingNotes(peer: PeerComparisonResult): string[] {
  const glyph = peer.perAppend.find((row) => row.store === "glyph");
  const other = peer.perAppend.find((row) => row.store === "peer");
  const per = (n: number | undefined, appends: number | undefined) =>
    n === undefined || appends === undefined ? "–" : (n / appends).toFixed(2);
  const lines = [
    "How the database side was counted:",
    "",
    `* **Statements** ${
      peer.statementsMethod === "pg_stat_statements"
        ? "come from pg_stat_statements (loaded in the bench's embedded PostgreSQL), by database: every top-level statement, BEGIN and COMMIT included; the bench's own queries of pg_stat_* views are left out by their text."
        : "could not be counted on the server (pg_stat_statements is not loaded; the bench does not change the server's configuration): the per-run statements column is empty, and the count below is of transactions (pg_stat_database.xact_commit + xact_rollback of each database, read after 11 s of quiet before and after, because a backend reports its counts up to 10 s after it goes idle)."
    } ` +
      `One writer, ${glyph?.appends ?? "–"} appends one after another on a new stream (the first creates it): glyph-streams ` +
      (peer.statementsMethod === "pg_stat_statements"
        ? `${per(glyph?.statements, glyph?.appends)} statements per append, the peer ${per(other?.statements, other?.appends)}`
        : `${per(glyph?.transactions, glyph?.appends)} transactions per append (over HTTP every statement the actor sends is its own transaction), the peer ${per(other?.transactions, other?.appends)}`) +
      (other?.statementsInProcess !== undefined
        ? `; the peer's own process counted ${per(other.statementsInProcess, other.appends)} statements per append sent by its driver (every call of pg's \`Client#query\`).`
        : "."),
    "* **Connections** are client backends of each store's database in pg_stat_activity, sampled every 100 ms during each run; the bench's own connections (application_name `glyph-bench…`) are left out. " +
      "glyph-streams' actors hold none: their statements are HTTP requests, and the server connections counted for glyph-streams are the local /sql endpoint's pool " +
      `(application_name \`neon-http-proxy\`; it opens them as statements arrive and, in the benchmark, closes one after ${BENCH_ENDPOINT_IDLE_MS / 1000} s unused; each glyph-streams run starts once the earlier runs' have closed, waiting up to ${BENCH_CONNECTIONS_WAIT_MS / 1000} s). ` +
      "In production that pool is Neon's, not the Worker's. The peer's pool (pg's defaults) also keeps up to 10 open while they are used within 10 s.",
  ];
  return lines;
}

function whereTheTimeGoes(peer: PeerComparisonResult, measures: Measure[]): string[] {
  const behind = measures.filter((measure) => verdictOf(measure) === "behind");
  const lines = ["### Where glyph-streams is behind, and where the time goes", ""];
  if (behind.length === 0) {
    lines.push("glyph-streams is ahead of or level with the peer on every measure above.");
    return lines;
  }
  const cases = [...new Set(behind.map((measure) => measure.case))];
  for (const label of cases) {
    if (label === CONNECTIONS_CASE) {
      const measure = behind.find((m) => m.case === label);
      lines.push(
        `* **Server connections** (${num(measure?.glyph, 0)} vs ${num(measure?.peer, 0)} at most at once). glyph-streams' actors hold no connection (decision 24): ` +
          "the connections counted are the local /sql endpoint's pool, at most 10 per set of credentials (its default), kept 10 s after their last statement; " +
          "the peer's pool is shared by all its streams and capped at 10 too (pg's default). Neither grows with the number of streams; in production glyph-streams' server connections are Neon's pooler's.",
      );
      continue;
    }
    const item = peer.cases.find((c) => c.label === label);
    const glyph = item?.glyph;
    const other = item?.peer ?? undefined;
    const which = behind
      .filter((measure) => measure.case === label)
      .map(
        (measure) =>
          `${measure.measure} ${num(measure.glyph, measure.digits ?? 1)} vs ${num(measure.peer, measure.digits ?? 1)}`,
      )
      .join(", ");
    const g = cpuPerRequest(glyph);
    const p = cpuPerRequest(other);
    const sentence =
      `* **${label}** (${which}). Per request, glyph-streams spent ${num(g?.service, 2)} ms of CPU in workerd and the local /sql endpoint (${num(g?.workerd, 2)} ms of it in workerd) and ${num(g?.database, 2)} ms in PostgreSQL; ` +
      `the peer ${num(p?.service, 2)} ms in its Node process and ${num(p?.database, 2)} ms in PostgreSQL` +
      (glyph && other && statementsPerAppend(glyph) !== undefined && statementsPerAppend(other) !== undefined
        ? `, with ${num(statementsPerAppend(glyph), 2)} and ${num(statementsPerAppend(other), 2)} statements per accepted append. `
        : ". ") +
      explanation(item);
    lines.push(sentence);
  }
  return lines;
}

/** What the design says about a case where glyph-streams is behind (facts about both stores, not measurements). */
function explanation(item: PeerCase | undefined): string {
  switch (item?.kind) {
    case "short":
    case "long":
    case "streams":
      return (
        "The peer's request is one Node event-loop turn around four statements on a warm pooled connection; glyph-streams' passes through workerd's HTTP handling, " +
        "the Worker, an RPC to the actor, and the actor's statement, sent as one HTTP request (`fetch`) to the local /sql endpoint, a Node process that runs it on a pooled connection; " +
        "the Worker and every actor share workerd's one thread, whose own cost per request is measured in sections 1 and 2. " +
        (item.kind === "short"
          ? "A new stream also means a new actor; because its first append starts the workflow, it writes as to an empty stream without loading anything (one statement), but the actor is created first."
          : item.kind === "streams"
            ? `With one writer per stream nothing groups into a shared transaction, so each append is its own statement and HTTP request, and locally the ${item.streams} actors share workerd's one thread and the one /sql endpoint process.`
            : "")
      );
    case "exact-retry":
      return (
        "Every refused request costs the full path (HTTP, Worker, RPC, the actor's check) even though no statement is sent (the events carry no ids chosen by the caller, so there is nothing to look up); " +
        "writers send back the 409's turn, so the writer refused first wins next while the others' retries wait in the actor (decision 23): each accepted append costs one refusal and one retry of the writer whose turn it is."
      );
    case "any":
    case "any-emmett-retry":
      return "";
    default:
      return "";
  }
}
