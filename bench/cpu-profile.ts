import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { z } from "zod";
import { benchAuthorization, newWebhookSecret } from "./lib/auth";
import { descendantsOf, readProcesses } from "./lib/cpu";
import { type HttpResponse, httpRequest } from "./lib/http-client";
import { startStack, startTrivialWorker } from "./lib/stack";
import {
  appendBody,
  contextEvent,
  createStream,
  getState,
  postAppend,
  startedEvent,
} from "./lib/workflow-events";

// `npm run profile [-- --requests N] [--no-write]`: where the Worker's CPU goes. The
// local stack (a throwaway embedded PostgreSQL, the /sql endpoint, the Worker in workerd)
// is driven one request at a time through each path twice: first with the inspector
// closed, reading workerd's CPU from /proc (the numbers), then on a fresh stack with the
// V8 inspector open, recording a CPU profile of the Worker's isolate, where the stream
// actors run too (where the time goes). A trivial Worker in the same runtime gives the
// floor every request pays before any of our code runs. Writes docs/cpu-profile.md.

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TICK_MS = 10; // /proc's clock ticks

const args = process.argv.slice(2);
const requests = Number(args[args.indexOf("--requests") + 1] ?? 0) || 400;
const write = !args.includes("--no-write");
const ROUNDS = 3;

const Target = z.array(z.object({ title: z.string(), webSocketDebuggerUrl: z.string() }));
const CallFrame = z.object({
  functionName: z.string(),
  scriptId: z.string(),
  url: z.string(),
  lineNumber: z.number(),
  columnNumber: z.number(),
});
type CallFrame = z.infer<typeof CallFrame>;
const Profile = z.object({
  nodes: z.array(
    z.object({ id: z.number(), callFrame: CallFrame, children: z.array(z.number()).optional() }),
  ),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
  startTime: z.number(),
  endTime: z.number(),
});
type Profile = z.infer<typeof Profile>;

interface PathCpu {
  name: string;
  requests: number;
  /** workerd's CPU per request, ms (/proc), the lowest of the rounds. */
  cpuMs: number;
}

interface PathProfile {
  name: string;
  requests: number;
  jsMs: number;
  top: Array<{ what: string; ms: number }>;
}

/** A request of one kind, and the status it must answer (anything else stops the run). */
interface RequestPath {
  name: string;
  status: number;
  send(i: number): Promise<HttpResponse>;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

/** A minimal Chrome DevTools Protocol session over the inspector's WebSocket. */
class Inspector {
  private next = 1;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
      if (message.id !== undefined) this.pending.get(message.id)?.(message.result);
    });
  }

  static async connect(url: string): Promise<Inspector> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    return new Inspector(socket);
  }

  send(method: string, params: object = {}): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.socket.close();
  }
}

/** CPU ticks of the workerd processes this run started (not other people's). */
function workerdTicks(): number {
  const processes = readProcesses();
  const ours = descendantsOf(process.pid, processes);
  return processes
    .filter((candidate) => candidate.comm === "workerd" && ours.has(candidate.pid))
    .reduce((sum, candidate) => sum + candidate.ticks, 0);
}

/** Self time per call frame, in ms, from the profile's samples. */
function selfTimes(profile: Profile): {
  byFrame: Map<string, { frame: CallFrame; ms: number }>;
  jsMs: number;
} {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFrame = new Map<string, { frame: CallFrame; ms: number }>();
  let jsMs = 0;
  profile.samples.forEach((id, index) => {
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) return;
    if (["(idle)", "(program)", "(garbage collector)"].includes(frame.functionName)) return;
    jsMs += ms;
    const key = `${frame.scriptId}:${frame.lineNumber}:${frame.columnNumber}:${frame.functionName}`;
    const entry = byFrame.get(key) ?? { frame, ms: 0 };
    entry.ms += ms;
    byFrame.set(key, entry);
  });
  return { byFrame, jsMs };
}

/**
 * A reader's name for a frame: the function's name and file, and for a function without
 * a name (or one of a minified library's one-letter names) the start of its source, so
 * that "(anonymous) index.js:33386" says which code it is.
 */
async function describeFrames(
  inspector: Inspector,
  frames: readonly CallFrame[],
): Promise<Map<CallFrame, string>> {
  const sources = new Map<string, string[]>();
  const names = new Map<CallFrame, string>();
  for (const frame of frames) {
    const file = frame.url.split("/").slice(-2).join("/") || "(native)";
    let what = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
    if (frame.url !== "" && frame.functionName.length <= 2) {
      if (!sources.has(frame.scriptId)) {
        const answer = z
          .object({ scriptSource: z.string() })
          .safeParse(await inspector.send("Debugger.getScriptSource", { scriptId: frame.scriptId }));
        sources.set(frame.scriptId, answer.success ? answer.data.scriptSource.split("\n") : []);
      }
      const line = sources.get(frame.scriptId)?.[frame.lineNumber] ?? "";
      const code = line.slice(Math.max(0, frame.columnNumber - 20), frame.columnNumber + 50).trim();
      if (code !== "") what += `: ${code.replace(/[`|\\]/g, " ")}`;
    }
    names.set(frame, what);
  }
  return names;
}

/** workerd's CPU over `count` requests of each path, the lowest of `rounds` rounds (the paths take turns). */
async function measureCpu(paths: readonly RequestPath[], count: number, rounds: number): Promise<PathCpu[]> {
  const best = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    for (const path of paths) {
      const ticksBefore = workerdTicks();
      for (let i = 0; i < count; i++) await sendExpecting(path, round * count + i);
      const ms = ((workerdTicks() - ticksBefore) * TICK_MS) / count;
      best.set(path.name, Math.min(best.get(path.name) ?? Number.POSITIVE_INFINITY, ms));
    }
  }
  return paths.map((path) => ({ name: path.name, requests: count, cpuMs: best.get(path.name) ?? 0 }));
}

async function sendExpecting(path: RequestPath, i: number): Promise<void> {
  const response = await path.send(i);
  if (response.status !== path.status)
    throw new Error(
      `${path.name} answered ${response.status}, not ${path.status}: ${response.body.slice(0, 200)}`,
    );
}

async function profilePaths(
  inspector: Inspector,
  paths: readonly RequestPath[],
  count: number,
): Promise<PathProfile[]> {
  const raw: Array<{ path: RequestPath; jsMs: number; top: Array<{ frame: CallFrame; ms: number }> }> = [];
  for (const path of paths) {
    await inspector.send("Profiler.start");
    for (let i = 0; i < count; i++) await sendExpecting(path, i);
    const { profile } = (await inspector.send("Profiler.stop")) as { profile: unknown };
    const { byFrame, jsMs } = selfTimes(Profile.parse(profile));
    raw.push({ path, jsMs, top: [...byFrame.values()].sort((a, b) => b.ms - a.ms).slice(0, 12) });
  }
  await inspector.send("Debugger.enable");
  const names = await describeFrames(
    inspector,
    raw.flatMap(({ top }) => top.map(({ frame }) => frame)),
  );
  return raw.map(({ path, jsMs, top }) => ({
    name: path.name,
    requests: count,
    jsMs,
    top: top.map(({ frame, ms }) => ({ what: names.get(frame) ?? frame.functionName, ms })),
  }));
}

function render(
  floor: PathCpu,
  rateLimited: PathCpu,
  cpu: PathCpu[],
  profiles: PathProfile[],
  conditions: string,
): string {
  const lines = [
    "# Where the Worker's CPU goes",
    "",
    "<!-- Written by `npm run profile` (bench/cpu-profile.ts). Do not edit by hand. -->",
    "",
    conditions,
    "",
    "| path | workerd CPU per request (ms, /proc) | above the runtime's floor (ms) | sampled JavaScript per request (ms, profiler on) |",
    "| --- | ---: | ---: | ---: |",
    `| the runtime's floor: a trivial Worker answering "ok" | ${floor.cpuMs.toFixed(2)} |  |  |`,
    `| the same Worker calling a Rate Limiting binding's \`limit()\` once first (miniflare's stand-in; production's Worker makes this call per request, a local run does not) | ${rateLimited.cpuMs.toFixed(2)} | ${Math.max(0, rateLimited.cpuMs - floor.cpuMs).toFixed(2)} |  |`,
    ...cpu.map((path) => {
      const profile = profiles.find((candidate) => candidate.name === path.name);
      const js = profile === undefined ? "" : (profile.jsMs / profile.requests).toFixed(2);
      return `| ${path.name} | ${path.cpuMs.toFixed(2)} | ${Math.max(0, path.cpuMs - floor.cpuMs).toFixed(2)} | ${js} |`;
    }),
    "",
    "The floor is a Worker that only answers `ok` in the same local runtime; what it costs, every request costs here before any of our code runs. " +
      "The CPU columns come from a run with the inspector closed; the profiles below from a second run with it open, sampling (which slows JavaScript down): read them for where the time goes, not for how much there is.",
    "",
    "What production differs in. Here no entry worker or static-assets router stands in front of the Worker (run_worker_first: in production Cloudflare routes the request before the Worker runs and does not bill that as the Worker's CPU); `npm start` runs the Worker in wrangler's dev environment, which costs more per request (docs/benchmarks.md, section 1). " +
      "The Rate Limiting binding is production's only (ARCHITECTURE, decision 27): a local run makes no call, production's Worker one per request; the second row is what miniflare's stand-in for one call costs here, production's binding is Cloudflare's own and cannot be measured here. " +
      "An append's statement leaves the actor by fetch() to the local /sql endpoint (a Node process, not counted here), as it leaves for Neon's HTTP endpoint in production. " +
      "The inspector is closed for the CPU numbers. " +
      "What remains above the floor is the Worker's and the actor's code and the runtime's work on the calls they make: the request, the RPC to the actor, the statement's fetch.",
    "",
  ];
  for (const profile of profiles) {
    lines.push(
      `## ${profile.name}: top JavaScript self time`,
      "",
      "| function | ms per request | share of JS |",
      "| --- | ---: | ---: |",
    );
    for (const { what, ms } of profile.top) {
      lines.push(
        `| \`${what}\` | ${(ms / profile.requests).toFixed(3)} | ${((100 * ms) / Math.max(profile.jsMs, 1e-9)).toFixed(1)} % |`,
      );
    }
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

/** workerd's CPU per request of a trivial Worker (startTrivialWorker). */
async function trivialCpu(name: string, options: { rateLimited?: boolean }): Promise<PathCpu> {
  const trivial = await startTrivialWorker(options);
  try {
    const path: RequestPath = { name, status: 200, send: () => httpRequest("GET", trivial.url, {}) };
    for (let i = 0; i < 50; i++) await sendExpecting(path, i);
    const [measured] = await measureCpu([path], requests, ROUNDS);
    return measured ?? { name, requests, cpuMs: 0 };
  } finally {
    await trivial.stop();
  }
}

/** The paths measured, against a Worker at `base` with a warm stream `stream` (refusals never change it). */
function requestPaths(base: URL, stream: string): RequestPath[] {
  const stale = JSON.stringify({ expected_version: 1, events: [{ event: contextEvent("stale", 0) }] });
  const refusedByRules = appendBody([startedEvent()]);
  return [
    {
      name: "authenticated GET of an unknown path (404)",
      status: 404,
      send: () => httpRequest("GET", new URL("/nothing", base), benchAuthorization),
    },
    { name: "GET /streams/:id/state of a warm stream", status: 200, send: () => getState(base, stream) },
    {
      name: "append one event to a warm stream",
      status: 201,
      send: (i) => postAppend(base, stream, appendBody([contextEvent("k", i)])),
    },
    {
      name: "append refused: stale expected version (409)",
      status: 409,
      send: () => postAppend(base, stream, stale),
    },
    {
      name: "append refused by the workflow rules (422)",
      status: 422,
      send: () => postAppend(base, stream, refusedByRules),
    },
  ];
}

async function warmStream(base: URL): Promise<string> {
  const stream = await createStream(base);
  for (let i = 0; i < 50; i++) await postAppend(base, stream, appendBody([contextEvent("warm", i)]));
  return stream;
}

async function main(): Promise<void> {
  console.log(`profile: ${requests} requests per path and round; starting the stack …`);
  // First the CPU, with the inspector closed (an open inspector costs CPU of its own).
  const stackOptions = { databaseUrl: undefined, webhookSecret: newWebhookSecret(), log: console.log };
  const cpuStack = await startStack(stackOptions);
  let cpu: PathCpu[];
  try {
    const base = cpuStack.worker.url;
    const paths = requestPaths(base, await warmStream(base));
    for (const path of paths) for (let i = 0; i < 50; i++) await sendExpecting(path, i);
    cpu = await measureCpu(paths, requests, ROUNDS);
  } finally {
    await cpuStack.close();
  }
  // The runtime's own floor: a Worker that only answers "ok", in the same local runtime;
  // and the same Worker counting each request with a Rate Limiting binding first, as the
  // product does, for what the local binding costs on its own.
  const floor = await trivialCpu("floor", {});
  const rateLimited = await trivialCpu("one Rate Limiting call", { rateLimited: true });
  // Then where it goes, with the inspector open and sampling.
  const inspectorPort = await freePort();
  const profileStack = await startStack({ ...stackOptions, inspectorPort });
  let profiles: PathProfile[];
  try {
    const base = profileStack.worker.url;
    const targets = Target.parse(await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json());
    const target = targets.find((candidate) => candidate.title.includes("glyph-streams")) ?? targets[0];
    if (target === undefined) throw new Error("the inspector lists no Worker");
    const inspector = await Inspector.connect(target.webSocketDebuggerUrl);
    try {
      await inspector.send("Profiler.enable");
      await inspector.send("Profiler.setSamplingInterval", { interval: 100 });
      const paths = requestPaths(base, await warmStream(base));
      for (const path of paths) for (let i = 0; i < 50; i++) await sendExpecting(path, i);
      profiles = await profilePaths(inspector, paths, requests);
    } finally {
      inspector.close();
    }
  } finally {
    await profileStack.close();
  }
  const conditions =
    `Measured ${new Date().toISOString().slice(0, 10)} on this machine (${cpus().length} cores, load average ${loadavg()[0]?.toFixed(2)} at the end), ` +
    `one request at a time against the Worker run as the benchmark runs it (the bundle \`wrangler deploy\` builds, in workerd through Miniflare, reached through a socket that leads straight to the Worker: bench/lib/lean-worker.ts), a throwaway embedded PostgreSQL 17. ` +
    `CPU: ${requests} requests per path in each of ${ROUNDS} rounds (the paths take turns), the lowest round kept; workerd's CPU from /proc ` +
    `includes the runtime itself. ` +
    `Profiles: ${requests} requests per path, V8 sampling every 100 µs in the Worker's isolate (which also runs the stream actors).`;
  const doc = render(floor, rateLimited, cpu, profiles, conditions);
  process.stdout.write(doc);
  if (write) writeFileSync(`${ROOT}docs/cpu-profile.md`, doc);
}

await main();
