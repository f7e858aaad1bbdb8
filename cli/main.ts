import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  type DeadLetter,
  GlyphClient,
  type NewEvent,
  type StoredEvent,
  type StreamHead,
  type Subscription,
} from "../client/index";
import { migrate } from "../scripts/lib/migrations";
import { openNodeDatabase } from "../scripts/lib/node-database";
import { makeToken } from "../scripts/lib/tokens";
import { readDatabaseSettings } from "../src/db/database-settings";
import { WORKFLOW_EVENT_TYPES, type WorkflowEventType } from "../src/events/types";
import { WorkflowStatus } from "../src/state/workflow-state";
import { type VerifyReport, verifyApi, verifyDatabase } from "./verify";

// glyph: the command line of glyph-streams, built on the client (client/).

const USAGE = `usage: glyph <command> [options]   (GLYPH_URL / --url, GLYPH_TOKEN / --token; --json for scripts)

  append <stream> <events>   append a JSON event or array of events (- reads stdin)
                             [--expected N|any|no_stream|stream_exists] [--if <json>] [--type <stream type>]
  state <stream> [--at N]    the workflow state, now or at version N
  events <stream>            the stream's events [--from N] [--backward] [--limit N]
  tail <stream> [--from N]   the stream's events after N, then live (Ctrl-C stops)
  feed [-f] [--after C]      the global feed after checkpoint C [--type T]; -f follows it live
  ls [--type T] [--status S] the streams
  verify [--streams ids]     replay every stream (or those listed) and compare with its head and snapshots:
                             from DATABASE_URL when set, else over the API (head and served state)
  migrate                    apply pending migrations to DATABASE_URL
  token --id ID --scopes read,append [--streams ids] [--stream-types types]   make an access token

  subs ls                    the subscriptions (admin token; "subscriptions" works too), with status and lag
  subs get <name>            one subscription: checkpoint, lag, last delivery and error, attempts, dead letters
  subs put <name> <url>      create it (prints its secret, once) or change it
                             [--type T,…] [--event-type E,…] [--batch N] [--from start|now|checkpoint]
  subs pause|resume <name>   hold deliveries, or deliver again at once
  subs replay <name> --from start|now|checkpoint   deliver again from there (or skip ahead)
  subs rm <name>             delete it and its dead letters
  subs dead-letters <name>   the deliveries its receiver did not take in time [--after id]
  subs redrive <name> [--ids 3,4]   deliver dead letters again (all, or those listed)`;

class UsageError extends Error {}

// `glyph events … | head` closes the pipe early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

function parseCommandLine() {
  return parseArgs({
    allowPositionals: true,
    options: {
      url: { type: "string" },
      token: { type: "string" },
      json: { type: "boolean", default: false },
      at: { type: "string" },
      from: { type: "string" },
      backward: { type: "boolean", default: false },
      limit: { type: "string" },
      expected: { type: "string" },
      if: { type: "string" },
      type: { type: "string" },
      status: { type: "string" },
      id: { type: "string" },
      scopes: { type: "string" },
      streams: { type: "string" },
      "stream-types": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
      follow: { type: "boolean", short: "f", default: false },
      after: { type: "string" },
      "event-type": { type: "string" },
      batch: { type: "string" },
      ids: { type: "string" },
    },
  });
}

let parsed: ReturnType<typeof parseCommandLine>;
try {
  parsed = parseCommandLine();
} catch (error) {
  console.error(`glyph: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
const { values, positionals } = parsed;

const [command, ...args] = positionals;

function client(): GlyphClient {
  const url = values.url ?? process.env.GLYPH_URL;
  if (!url)
    throw new UsageError("Set GLYPH_URL or --url to the service's address, such as http://127.0.0.1:8787.");
  const token = values.token ?? process.env.GLYPH_TOKEN;
  return new GlyphClient({ url, ...(token ? { token } : {}) });
}

function needStream(): string {
  const stream = args[0];
  if (!stream) throw new UsageError(`glyph ${command} needs a stream id.`);
  return stream;
}

function whole(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} must be a whole number, not "${text}".`);
  return Number(text);
}

function parseJson(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what} is not JSON.`);
  }
}

/** Rows as aligned columns, for people. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

const short = (value: unknown, length = 60) => {
  const text = JSON.stringify(value) ?? "";
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
};

function eventLine(event: StoredEvent): string {
  const { type, ...fields } = event.event;
  return `${String(event.version).padStart(6)}  ${event.occurred_at}  ${type.padEnd(20)}  ${short(fields, 80)}`;
}

const streamRow = (head: StreamHead) => [
  head.stream_id,
  head.stream_type,
  head.status,
  String(head.version),
  head.updated_at,
];

/** A progress bar with ETA on stderr when it is a terminal; nothing otherwise. */
function progressBar(label: string): (done: number, total: number) => void {
  if (!process.stderr.isTTY) return () => {};
  const started = Date.now();
  return (done, total) => {
    const width = 30;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    const elapsed = (Date.now() - started) / 1000;
    const eta = done === 0 ? "?" : `${Math.ceil((elapsed / done) * (total - done))}s`;
    process.stderr.write(
      `\r${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}  ETA ${eta}   `,
    );
    if (done === total) process.stderr.write("\n");
  };
}

async function main(): Promise<number> {
  if (values.help || command === undefined || command === "help") {
    console.log(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  switch (command) {
    case "append": {
      const stream = needStream();
      const source = args[1];
      if (source === undefined)
        throw new UsageError("glyph append needs the events: JSON, or - to read stdin.");
      const parsed = parseJson("The events", source === "-" ? readFileSync(0, "utf8") : source);
      const events = (Array.isArray(parsed) ? parsed : [parsed]) as NewEvent[];
      const expected = values.expected;
      const result = await client().append(stream, events, {
        ...(expected === undefined
          ? {}
          : {
              expectedVersion: /^\d+$/.test(expected)
                ? Number(expected)
                : (expected as "any" | "no_stream" | "stream_exists"),
            }),
        ...(values.if === undefined ? {} : { if: parseJson("--if", values.if) as never }),
        ...(values.type === undefined ? {} : { streamType: values.type }),
      });
      if (values.json) console.log(JSON.stringify(result));
      else
        console.log(
          `appended ${result.versions.length === 1 ? "version" : "versions"} ${result.versions.join(", ")} to ${result.stream_id}${result.idempotent ? " (a repeat: nothing new written)" : ""}`,
        );
      return 0;
    }
    case "state": {
      const at = whole("at", values.at);
      const result = await client().state(needStream(), at === undefined ? {} : { at });
      if (values.json) console.log(JSON.stringify(result));
      else {
        const { state } = result;
        console.log(`stream ${result.stream_id} at version ${result.version}: ${state.status}`);
        console.log(`current step: ${state.current_step ?? "none"}`);
        const steps = Object.entries(state.steps);
        if (steps.length > 0)
          console.log(
            table(
              ["step", "status"],
              steps.map(([id, step]) => [id, step.status]),
            ),
          );
        const context = Object.entries(state.context);
        if (context.length > 0)
          console.log(
            table(
              ["context", "value"],
              context.map(([key, value]) => [key, short(value)]),
            ),
          );
      }
      return 0;
    }
    case "events": {
      const from = whole("from", values.from);
      const limit = whole("limit", values.limit);
      for await (const event of client().events(needStream(), {
        ...(from === undefined ? {} : { from }),
        ...(limit === undefined ? {} : { limit }),
        direction: values.backward ? "backward" : "forward",
      })) {
        console.log(values.json ? JSON.stringify(event) : eventLine(event));
      }
      return 0;
    }
    case "tail": {
      const stream = needStream();
      const from = whole("from", values.from) ?? 0;
      const stop = new AbortController();
      process.once("SIGINT", () => stop.abort());
      process.once("SIGTERM", () => stop.abort());
      for await (const event of client().watch(stream, {
        from,
        signal: stop.signal,
        onReconnect: (reason) =>
          process.stderr.write(`glyph: reconnecting (${reason || "connection lost"})\n`),
      })) {
        console.log(values.json ? JSON.stringify(event) : eventLine(event));
      }
      return 0;
    }
    case "feed": {
      const stop = new AbortController();
      process.once("SIGINT", () => stop.abort());
      process.once("SIGTERM", () => stop.abort());
      const common = {
        ...(values.after === undefined ? {} : { after: values.after }),
        ...(values.type === undefined ? {} : { streamType: values.type.split(",") }),
        signal: stop.signal,
      };
      const events = values.follow
        ? client().watchAll({
            ...common,
            onReconnect: (reason) =>
              process.stderr.write(`glyph: reconnecting (${reason || "connection lost"})\n`),
          })
        : client().feed(common);
      for await (const event of events) {
        console.log(
          values.json
            ? JSON.stringify(event)
            : `${event.checkpoint}  ${event.stream_id}  ${eventLine(event).trimStart()}`,
        );
      }
      return 0;
    }
    case "ls": {
      let status: WorkflowStatus | undefined;
      if (values.status !== undefined) {
        const parsed = WorkflowStatus.safeParse(values.status);
        if (!parsed.success) throw new UsageError(`--status is one of ${WorkflowStatus.options.join(", ")}.`);
        status = parsed.data;
      }
      const heads: StreamHead[] = [];
      for await (const head of client().list({
        ...(values.type === undefined ? {} : { type: values.type }),
        ...(status === undefined ? {} : { status }),
      })) {
        heads.push(head);
      }
      if (values.json) console.log(JSON.stringify(heads));
      else console.log(table(["stream", "type", "status", "version", "updated"], heads.map(streamRow)));
      return 0;
    }
    case "verify": {
      const only = values.streams
        ?.split(",")
        .map((id) => id.trim())
        .filter(Boolean);
      let report: VerifyReport;
      if (process.env.DATABASE_URL) {
        const database = await openNodeDatabase(readDatabaseSettings(process.env), 2);
        try {
          report = await verifyDatabase(database.pool, progressBar("verify"), only);
        } finally {
          await database.close();
        }
      } else {
        report = await verifyApi(client(), progressBar("verify"), only);
      }
      if (values.json) console.log(JSON.stringify(report));
      else {
        console.log(
          `${report.streams} streams, ${report.events} events, ${report.snapshots} snapshots replayed: ${report.mismatches.length} mismatches`,
        );
        if (report.mismatches.length > 0) {
          console.log(
            table(
              ["stream", "version", "mismatch"],
              report.mismatches.map((m) => [m.stream_id, String(m.version), m.what]),
            ),
          );
        }
      }
      return report.mismatches.length === 0 ? 0 : 1;
    }
    case "migrate": {
      const database = await openNodeDatabase(readDatabaseSettings(process.env), 1);
      try {
        const report = await migrate(database.pool);
        if (values.json) console.log(JSON.stringify(report));
        else {
          for (const name of report.applied) console.log(`applied ${name}`);
          console.log(`${report.applied.length} applied, ${report.alreadyApplied.length} already applied`);
        }
        return 0;
      } finally {
        await database.close();
      }
    }
    case "token": {
      const made = makeToken({
        id: values.id,
        scopes: values.scopes,
        streams: values.streams,
        streamTypes: values["stream-types"],
      });
      if (!made.ok) throw new UsageError(made.error);
      if (values.json) console.log(JSON.stringify({ token: made.token, entry: made.entry }));
      else {
        console.log(`token (shown once; give it to the caller):\n  ${made.token}\n`);
        console.log(
          `AUTH_TOKENS entry (add it to the JSON list in the secret):\n  ${JSON.stringify(made.entry)}`,
        );
      }
      return 0;
    }
    case "subs":
    case "subscriptions":
      return subscriptions();
    default:
      throw new UsageError(`Unknown command "${command}"; glyph --help lists them.`);
  }
}

const SUBSCRIPTION_COMMANDS = "ls, get, put, pause, resume, replay, rm, dead-letters, redrive";

/** `glyph subs <verb> …`: the subscriptions' admin routes. */
async function subscriptions(): Promise<number> {
  const [verb, name, target] = args;
  const needName = () => {
    if (!name) throw new UsageError(`glyph subs ${verb} needs a subscription name.`);
    return name;
  };
  const print = (subscription: Subscription, what: string) => {
    if (values.json) console.log(JSON.stringify(subscription));
    else console.log(`subscription ${subscription.name} ${what}: ${subscriptionSummary(subscription)}`);
  };
  switch (verb) {
    case "ls":
    case "list": {
      const all = await client().subscriptions();
      if (values.json) console.log(JSON.stringify(all));
      else
        console.log(
          table(
            ["name", "status", "lag", "dead letters", "last delivery", "url"],
            all.map((s) => [
              s.name,
              s.status,
              lagText(s),
              String(s.dead_letters),
              s.last_delivery_at ?? "never",
              s.url,
            ]),
          ),
        );
      return 0;
    }
    case "get": {
      const subscription = await client().subscription(needName());
      if (values.json) console.log(JSON.stringify(subscription));
      else console.log(subscriptionDetails(subscription));
      return 0;
    }
    case "put": {
      const subscriptionName = needName();
      if (!target) throw new UsageError("glyph subs put needs the URL to deliver to, after the name.");
      const batchSize = whole("batch", values.batch);
      const eventTypes = values["event-type"]?.split(",").map((type) => type.trim());
      const unknown = eventTypes?.find((type) => !WORKFLOW_EVENT_TYPES.includes(type as WorkflowEventType));
      if (unknown !== undefined)
        throw new UsageError(`--event-type "${unknown}" is not one of ${WORKFLOW_EVENT_TYPES.join(", ")}.`);
      const result = await client().putSubscription(subscriptionName, {
        url: target,
        ...(values.type === undefined ? {} : { streamType: values.type.split(",").map((t) => t.trim()) }),
        ...(eventTypes === undefined ? {} : { eventType: eventTypes as WorkflowEventType[] }),
        ...(values.from === undefined ? {} : { from: values.from }),
        ...(batchSize === undefined ? {} : { batchSize }),
      });
      if (values.json) console.log(JSON.stringify(result));
      else if (result.created) {
        console.log(`created subscription ${result.name}: ${subscriptionSummary(result)}`);
        console.log(`secret (shown once; the receiver verifies signatures with it):\n  ${result.secret}`);
      } else {
        console.log(`changed subscription ${result.name}: ${subscriptionSummary(result)}`);
      }
      return 0;
    }
    case "pause":
      print(await client().pauseSubscription(needName()), "paused");
      return 0;
    case "resume":
      print(await client().resumeSubscription(needName()), "resumed");
      return 0;
    case "replay": {
      const subscriptionName = needName();
      if (values.from === undefined)
        throw new UsageError("glyph subs replay needs --from start, now or a checkpoint.");
      print(await client().replaySubscription(subscriptionName, values.from), `replays from ${values.from}`);
      return 0;
    }
    case "rm":
    case "delete": {
      const subscriptionName = needName();
      await client().deleteSubscription(subscriptionName);
      if (values.json) console.log(JSON.stringify({ name: subscriptionName, deleted: true }));
      else console.log(`deleted subscription ${subscriptionName} and its dead letters`);
      return 0;
    }
    case "dead-letters": {
      const after = whole("after", values.after);
      const letters = client().deadLetters(needName(), after === undefined ? {} : { after });
      if (values.json) {
        for await (const letter of letters) console.log(JSON.stringify(letter));
        return 0;
      }
      const rows: string[][] = [];
      for await (const letter of letters) rows.push(deadLetterRow(letter));
      console.log(
        table(["id", "webhook id", "events", "attempts", "dead at", "re-drive", "last error"], rows),
      );
      return 0;
    }
    case "redrive": {
      const subscriptionName = needName();
      const ids = values.ids?.split(",").map((id) => whole("ids", id.trim()) ?? 0);
      const result = await client().redriveDeadLetters(subscriptionName, ids === undefined ? {} : { ids });
      if (values.json) console.log(JSON.stringify(result));
      else console.log(`${count(result.redriven, "dead letter")} of ${result.name} queued for delivery`);
      return 0;
    }
    case undefined:
      throw new UsageError(`glyph subs needs one of ${SUBSCRIPTION_COMMANDS}.`);
    default:
      throw new UsageError(`Unknown subs command "${verb}"; it is one of ${SUBSCRIPTION_COMMANDS}.`);
  }
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
const lagText = (s: Subscription) => `${count(s.lag.events, "event")}, ${s.lag.seconds} s`;

/** One line: status, lag, dead letters, and the last error while retrying. */
function subscriptionSummary(s: Subscription): string {
  return [
    s.status,
    `lag ${lagText(s)}`,
    count(s.dead_letters, "dead letter"),
    ...(s.status === "retrying" && s.last_error ? [`last error: ${s.last_error}`] : []),
  ].join(", ");
}

function subscriptionDetails(s: Subscription): string {
  const rows: Array<[string, string]> = [
    ["status", s.status],
    ["url", s.url],
    ["stream types", s.stream_types?.join(", ") ?? "all"],
    ["event types", s.event_types?.join(", ") ?? "all"],
    ["batch size", String(s.batch_size)],
    ["checkpoint", s.checkpoint],
    ["lag", lagText(s)],
    ["last delivery", s.last_delivery_at ?? "never"],
    ["last error", s.last_error === null ? "none" : `${s.last_error} (at ${s.last_error_at ?? "?"})`],
    ["attempts", String(s.attempts)],
    ["next attempt", s.next_attempt_at ?? "none"],
    ["dead letters", String(s.dead_letters)],
    ["created", s.created_at],
  ];
  return table(["subscription", s.name], rows);
}

const deadLetterRow = (letter: DeadLetter) => [
  String(letter.id),
  letter.webhook_id,
  String(letter.events.length),
  String(letter.attempts),
  letter.dead_at,
  letter.redrive_requested ? "queued" : "",
  letter.last_error,
];

try {
  process.exitCode = await main();
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`glyph: ${message.split("\n")[0]}`);
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
