import type { ThroughputRow } from "../scenarios/stream-throughput";
import type { BenchResults } from "./results";
import { barChart, lineChart } from "./svg";

// The charts of docs/benchmarks.md, built from a run's results.

export interface Chart {
  /** File name without the prefix, e.g. "append-latency.svg". */
  name: string;
  alt: string;
  svg: string;
}

export function buildCharts(results: BenchResults): Chart[] {
  const charts: Chart[] = [];
  const { latency, throughput, aggregate, coldStart, watchers, webhooks, peer } = results;
  const db = results.database.kind === "server" ? "PostgreSQL" : "embedded PostgreSQL";

  if (latency) {
    const shown = latency.paths.filter((path) =>
      [
        "stack",
        "stack-dev",
        "stack-dev-proxy",
        "runtime-only",
        "worker-only",
        "worker-actor",
        "direct-insert",
        "store-append",
        "store-append-http",
      ].includes(path.id),
    );
    const short: Record<string, string> = {
      stack: "append",
      "stack-dev": "npm start's runtime",
      "stack-dev-proxy": "via dev proxy",
      "runtime-only": "trivial Worker",
      "worker-only": "Worker only",
      "worker-actor": "Worker + actor",
      "direct-insert": "direct INSERT",
      "store-append": "store statement",
      "store-append-http": "statement over HTTP",
    };
    const baseline = latency.paths.find((path) => path.id === "direct-insert")?.summary.p50;
    charts.push({
      name: "append-latency.svg",
      alt: "Append latency p50/p95/p99 by path",
      svg: barChart({
        title: "Append latency, one writer (ms, lower is better)",
        subtitle: `${latency.samplesPerPath} samples per path; ${db}; dashed: target for the stack's p50 (2 × direct INSERT p50 + 2 ms)`,
        categories: shown.map((path) => short[path.id] ?? path.id),
        series: [
          { name: "p50", values: shown.map((path) => path.summary.p50) },
          { name: "p95", values: shown.map((path) => path.summary.p95) },
          { name: "p99", values: shown.map((path) => path.summary.p99) },
        ],
        unit: "ms",
        ...(baseline === undefined
          ? {}
          : { markers: [{ value: 2 * baseline + 2, label: "target for the stack's p50" }] }),
      }),
    });
  }

  if (throughput && throughput.rows.length > 0) {
    const writers = [...new Set(throughput.rows.map((row) => row.writers))].sort((a, b) => a - b);
    const sizes = [...new Set(throughput.rows.map((row) => row.eventsPerAppend))].sort((a, b) => a - b);
    const rows = throughput.rows;
    const valueFor = (size: number, count: number, pick: (row: ThroughputRow) => number) => {
      const row = rows.find((r) => r.writers === count && r.eventsPerAppend === size);
      return row === undefined ? undefined : pick(row);
    };
    charts.push({
      name: "stream-throughput.svg",
      alt: "Events per second on one stream by number of concurrent writers",
      svg: lineChart({
        title: "One stream: events/s by concurrent writers (higher is better)",
        subtitle: `closed loop, ${throughput.windowMs / 1000} s window after ${throughput.warmupMs / 1000} s warm-up; ${db}`,
        x: writers,
        xLabel: "concurrent writers on the stream",
        series: sizes.map((size) => ({
          name: size === 1 ? "1 event per append" : `${size} events per append`,
          values: writers.map((count) => valueFor(size, count, (row) => row.eventsPerSecond)),
        })),
        unit: "events/s",
        logX: true,
        logY: true,
      }),
    });
    charts.push({
      name: "group-commit.svg",
      alt: "Appends per transaction by number of concurrent writers",
      svg: lineChart({
        title: "Group commit: appends per database transaction",
        subtitle: "distinct xmin of the stream's rows; 1.0 means every append was its own transaction",
        x: writers,
        xLabel: "concurrent writers on the stream",
        series: sizes.map((size) => ({
          name: size === 1 ? "1 event per append" : `${size} events per append`,
          values: writers.map((count) => valueFor(size, count, (row) => row.appendsPerTransaction)),
        })),
        unit: "appends per transaction",
        logX: true,
        logY: true,
      }),
    });
  }

  if (aggregate && aggregate.rows.length > 0) {
    charts.push({
      name: "aggregate-throughput.svg",
      alt: "Events per second over 64 streams",
      svg: barChart({
        title: `All streams together: events/s over ${aggregate.rows[0]?.streams ?? 64} streams`,
        subtitle: `closed loop, ${aggregate.windowMs / 1000} s window; ${db}`,
        categories: aggregate.rows.map(
          (row) =>
            `${row.writersPerStream} writer/stream × ${row.eventsPerAppend} event${row.eventsPerAppend > 1 ? "s" : ""}`,
        ),
        series: [{ name: "events/s, all streams", values: aggregate.rows.map((row) => row.eventsPerSecond) }],
        unit: "events/s",
      }),
    });
  }

  if (coldStart && coldStart.rows.length > 0) {
    const sizes = [...new Set(coldStart.rows.map((row) => row.events))].sort((a, b) => a - b);
    const med = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted.length === 0 ? undefined : sorted[Math.ceil(sorted.length / 2) - 1];
    };
    charts.push({
      name: "cold-start.svg",
      alt: "First GET /state of a stream whose actor does not exist yet, by stream length",
      svg: lineChart({
        title: "Cold start: first GET /state by stream length (ms, lower is better)",
        subtitle: "actor created on demand: connect, read head + snapshot + tail (or every event); median",
        x: sizes,
        xLabel: "events in the stream",
        series: [true, false].map((snapshot) => ({
          name: snapshot ? "with snapshots" : "snapshots disabled (full replay)",
          values: sizes.map((size) => {
            const row = coldStart.rows.find((r) => r.events === size && r.snapshot === snapshot);
            return row === undefined ? undefined : med(row.firstMs);
          }),
        })),
        unit: "ms",
        logX: true,
        logY: true,
      }),
    });
  }

  if (watchers && watchers.rows.length > 0) {
    charts.push({
      name: "watchers.svg",
      alt: "Delay from an append's acknowledgement to its delivery at each watcher",
      svg: barChart({
        title: "Watcher fan-out: delivery after the append's 201 (ms, lower is better)",
        subtitle:
          "per (append, watcher); negative = the event reached the watcher before the writer's answer",
        categories: watchers.rows.map((row) => `${row.watchers} watchers`),
        series: [
          { name: "p50 after ack", values: watchers.rows.map((row) => row.afterAck.p50) },
          { name: "p99 after ack", values: watchers.rows.map((row) => row.afterAck.p99) },
          { name: "p99 after send", values: watchers.rows.map((row) => row.afterSend.p99) },
        ],
        unit: "ms",
        markers: [{ value: 50, label: "target p99" }],
      }),
    });
  }

  if (webhooks && webhooks.rows.length > 0) {
    charts.push({
      name: "webhooks.svg",
      alt: "Signed webhook deliveries per second by concurrent senders",
      svg: barChart({
        title: "Signed webhooks: deliveries/s (higher is better)",
        subtitle: `POST /webhooks/:source, signature checked, one event each; ${webhooks.windowMs / 1000} s window`,
        categories: webhooks.rows.map(
          (row) =>
            `${row.senders} sender${row.senders > 1 ? "s" : ""}, ${row.streams} stream${row.streams > 1 ? "s" : ""}`,
        ),
        series: [
          {
            name: "signed webhooks, deliveries/s",
            values: webhooks.rows.map((row) => row.deliveriesPerSecond),
          },
          {
            name: "plain appends/s, same load",
            values: webhooks.rows.map((row) => row.plain.appendsPerSecond),
          },
        ],
        unit: "requests/s",
      }),
    });
  }
  if (peer?.cases.some((item) => item.glyph || item.peer)) {
    const shown = peer.cases.filter((item) => item.skipped === undefined);
    const short: Record<string, string> = {
      short: "short streams",
      any: "64 writers, any",
      "any-emmett-retry": "any, Emmett retry",
      "exact-retry": "64, exact + retry",
      streams: "64 streams",
    };
    charts.push({
      name: "peer-throughput.svg",
      alt: "Accepted appends per second, glyph-streams beside the peer (Emmett)",
      svg: barChart({
        title: "glyph-streams beside the peer (Emmett): accepted appends/s (higher is better)",
        subtitle: `closed loop, ${peer.windowMs / 1000} s window per case and store; ${db}, one server, a database each`,
        categories: shown.map((item) =>
          item.kind === "long"
            ? `${(item.startEvents ?? 0).toLocaleString("en-US")} events`
            : (short[item.id] ?? item.id),
        ),
        series: [
          { name: "glyph-streams", values: shown.map((item) => item.glyph?.appendsPerSecond ?? Number.NaN) },
          { name: "peer (Emmett)", values: shown.map((item) => item.peer?.appendsPerSecond ?? Number.NaN) },
        ],
        unit: "appends/s",
      }),
    });
  }
  return charts;
}
