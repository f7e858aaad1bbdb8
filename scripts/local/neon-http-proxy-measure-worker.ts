import {
  type ActorMode,
  type MeasureSettings,
  measureLatency,
  PATHS,
  type PathName,
  runActor,
  STATEMENTS,
  type StatementName,
} from "./neon-http-proxy-measure-paths";

// A throwaway Worker for neon-http-proxy-measure.ts: it runs the same measurement code
// as the Node side, inside workerd (started with scripts/local/worker.ts and
// `source: {name, entrypoint, compatibilityDate}`). Never deployed; measures only.
//
//   GET /clock                                 how finely performance.now() moves across I/O here
//   GET /latency?path=&statement=&count=&warmup=   one request, `count` statements in a row
//   GET /actor?mode=&idle=                     one distinct actor: its own driver objects, one append

export default {
  async fetch(request: Request, env: MeasureSettings, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    const now = () => performance.now();
    try {
      if (url.pathname === "/clock") {
        const readings: number[] = [];
        for (let i = 0; i < 20; i++) {
          await measureLatency({
            settings: env,
            path: "http",
            statement: "select",
            count: 1,
            warmup: 0,
            now,
          });
          readings.push(now());
        }
        return Response.json({ readings });
      }
      if (url.pathname === "/latency") {
        const path = url.searchParams.get("path") as PathName;
        const statement = url.searchParams.get("statement") as StatementName;
        if (!PATHS.includes(path) || !STATEMENTS.includes(statement))
          return new Response("bad", { status: 400 });
        const samples = await measureLatency({
          settings: env,
          path,
          statement,
          count: Number(url.searchParams.get("count") ?? 100),
          warmup: Number(url.searchParams.get("warmup") ?? 0),
          now,
        });
        return Response.json({ samples });
      }
      if (url.pathname === "/actor") {
        const mode = url.searchParams.get("mode") as ActorMode;
        const idleMs = Number(url.searchParams.get("idle") ?? 10_000);
        const outcome = await runActor({ settings: env, mode, idleMs, now });
        // A held connection lives as long as this request's context: keep it open for the idle timeout.
        ctx.waitUntil(outcome.released);
        return Response.json({ ok: outcome.ok, ms: outcome.ms, error: outcome.error });
      }
      return new Response("not found", { status: 404 });
    } catch (error) {
      return new Response(String((error as Error)?.stack ?? error), { status: 500 });
    }
  },
};
