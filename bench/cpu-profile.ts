import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { z } from "zod";
import { startLocalStack } from "../scripts/local/stack";
import { benchAuthorization, benchAuthTokens } from "./lib/auth";
import { descendantsOf, readProcesses } from "./lib/cpu";
import { httpRequest } from "./lib/http-client";
import { startTrivialWorker } from "./lib/stack";
import { appendBody, contextEvent, createStream, getState, postAppend } from "./lib/workflow-events";

// `npm run profile [-- --requests N] [--no-write]`: where the Worker's CPU goes. The
// local stack (a throwaway embedded PostgreSQL, the bridge, the Worker in workerd with
// the V8 inspector open) is driven one request at a time through each path while the
// inspector records a CPU profile of the Worker's isolate (the stream actors run in it
// too); workerd's whole CPU time over the same requests is read from /proc. JavaScript
// self time by function shows what is ours; the rest of workerd's time is the runtime
// (HTTP, RPC to the actor, the driver's sockets, miniflare's entry worker). Writes
// docs/cpu-profile.md.

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TICK_MS = 10; // /proc's clock ticks

const args = process.argv.slice(2);
const requests = Number(args[args.indexOf("--requests") + 1] ?? 0) || 400;
const write = !args.includes("--no-write");

const Target = z.array(z.object({ title: z.string(), webSocketDebuggerUrl: z.string() }));
const CallFrame = z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() });
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

interface PathResult {
  name: string;
  requests: number;
  wallMs: number;
  workerdCpuMs: number;
  jsMs: number;
  idleMs: number;
  top: Array<{ what: string; ms: number }>;
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

/** Self time per function, in ms, from the profile's samples. */
function selfTimes(profile: Profile): { byFunction: Map<string, number>; idleMs: number; totalMs: number } {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  let idleMs = 0;
  let totalMs = 0;
  profile.samples.forEach((id, index) => {
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    totalMs += ms;
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) return;
    if (frame.functionName === "(idle)" || frame.functionName === "(program)") {
      idleMs += ms;
      return;
    }
    const file = frame.url.split("/").slice(-2).join("/") || "(native)";
    const what = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
    byFunction.set(what, (byFunction.get(what) ?? 0) + ms);
  });
  return { byFunction, idleMs, totalMs };
}

async function profilePath(
  inspector: Inspector,
  name: string,
  run: () => Promise<void>,
  count: number,
): Promise<PathResult> {
  await inspector.send("Profiler.start");
  const ticksBefore = workerdTicks();
  const startedAt = performance.now();
  await run();
  const wallMs = performance.now() - startedAt;
  const ticksAfter = workerdTicks();
  const { profile } = (await inspector.send("Profiler.stop")) as { profile: unknown };
  const { byFunction, idleMs, totalMs } = selfTimes(Profile.parse(profile));
  const jsMs = totalMs - idleMs;
  return {
    name,
    requests: count,
    wallMs,
    workerdCpuMs: (ticksAfter - ticksBefore) * TICK_MS,
    jsMs,
    idleMs,
    top: [...byFunction.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([what, ms]) => ({ what, ms })),
  };
}

function render(results: PathResult[], conditions: string): string {
  const per = (ms: number, count: number) => (ms / count).toFixed(3);
  const floor = results.find((result) => result.top.length === 0);
  const floorMs = floor === undefined ? 0 : floor.workerdCpuMs / floor.requests;
  const lines = [
    "# Where the Worker's CPU goes",
    "",
    "<!-- Written by `npm run profile` (bench/cpu-profile.ts). Do not edit by hand. -->",
    "",
    conditions,
    "",
    "| path | requests | workerd CPU per request (ms, /proc) | above the runtime's floor (ms) | sampled JavaScript per request (ms, wall time with the profiler on) |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...results.map(
      (result) =>
        `| ${result.name} | ${result.requests} | ${per(result.workerdCpuMs, result.requests)} | ${result.top.length === 0 ? "" : Math.max(0, result.workerdCpuMs / result.requests - floorMs).toFixed(3)} | ${result.top.length === 0 ? "" : per(result.jsMs, result.requests)} |`,
    ),
    "",
    "The floor is a Worker that only answers `ok` in the same local runtime; what it costs, every request costs here before any of our code runs. The sampled JavaScript time is wall time while the inspector samples (slower than without it, and stretched when the machine is busy): read it for the shares below, not as CPU.",
    "",
  ];
  for (const result of results.filter((candidate) => candidate.top.length > 0)) {
    lines.push(
      `## ${result.name}: top JavaScript self time`,
      "",
      "| function | ms per request | share of JS |",
      "| --- | ---: | ---: |",
    );
    for (const { what, ms } of result.top) {
      lines.push(
        `| \`${what}\` | ${per(ms, result.requests)} | ${((100 * ms) / Math.max(result.jsMs, 1e-9)).toFixed(1)} % |`,
      );
    }
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<void> {
  const inspectorPort = await freePort();
  console.log(`profile: ${requests} requests per path; starting the stack …`);
  const stack = await startLocalStack({
    database: { embedded: {} },
    worker: { vars: { AUTH_TOKENS: benchAuthTokens() }, inspectorPort },
  });
  try {
    const base = stack.worker.url;
    const targets = Target.parse(await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json());
    const target = targets.find((candidate) => candidate.title.includes("glyph-streams")) ?? targets[0];
    if (target === undefined) throw new Error("the inspector lists no Worker");
    const inspector = await Inspector.connect(target.webSocketDebuggerUrl);
    await inspector.send("Profiler.enable");
    await inspector.send("Profiler.setSamplingInterval", { interval: 100 });

    const stream = await createStream(base);
    for (let i = 0; i < 50; i++) await postAppend(base, stream, appendBody([contextEvent("warm", i)]));
    for (let i = 0; i < 50; i++) await httpRequest("GET", new URL("/nothing", base), benchAuthorization);

    const results = [
      await profilePath(
        inspector,
        "authenticated GET of an unknown path (404)",
        async () => {
          for (let i = 0; i < requests; i++)
            await httpRequest("GET", new URL("/nothing", base), benchAuthorization);
        },
        requests,
      ),
      await profilePath(
        inspector,
        "GET /streams/:id/state of a warm stream",
        async () => {
          for (let i = 0; i < requests; i++) await getState(base, stream);
        },
        requests,
      ),
      await profilePath(
        inspector,
        "append one event to a warm stream",
        async () => {
          for (let i = 0; i < requests; i++)
            await postAppend(base, stream, appendBody([contextEvent("k", i)]));
        },
        requests,
      ),
    ];
    inspector.close();
    // The runtime's own floor: a Worker that only answers "ok", in the same local runtime.
    const trivial = await startTrivialWorker();
    try {
      for (let i = 0; i < 50; i++) await httpRequest("GET", trivial.url, {});
      const ticksBefore = workerdTicks();
      const startedAt = performance.now();
      for (let i = 0; i < requests; i++) await httpRequest("GET", trivial.url, {});
      results.unshift({
        name: 'the runtime\'s floor: a trivial Worker answering "ok" (not profiled)',
        requests,
        wallMs: performance.now() - startedAt,
        workerdCpuMs: (workerdTicks() - ticksBefore) * TICK_MS,
        jsMs: 0,
        idleMs: 0,
        top: [],
      });
    } finally {
      await trivial.stop();
    }
    const conditions =
      `Measured ${new Date().toISOString().slice(0, 10)} on this machine (${(await import("node:os")).cpus().length} cores), ` +
      `one request at a time against the Worker's own socket (no wrangler dev proxy), a throwaway embedded PostgreSQL 17, ` +
      `V8 sampling every 100 µs. The profile covers the Worker's isolate, which also runs the stream actors; ` +
      `workerd's CPU from /proc also includes the runtime itself and miniflare's entry worker, which production does not have.`;
    const doc = render(results, conditions);
    process.stdout.write(doc);
    if (write) writeFileSync(`${ROOT}docs/cpu-profile.md`, doc);
  } finally {
    await stack.close();
  }
}

await main();
