import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { convertV4MiniflareOptions, Miniflare, type V4WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

// The leanest local configuration that is still workerd (issue 11, item 3), for the
// benchmark: the bundle `wrangler deploy` would upload (built with --dry-run from the
// same wrangler config), run by Miniflare with the bindings wrangler derives from that
// config, and reached through a socket of workerd's own that leads straight to the
// Worker. What `npm start` (wrangler's dev environment) puts in front of and around it,
// none of which production has, is left out: wrangler's dev proxy, Miniflare's entry
// Worker, the static-assets router (the ASSETS binding still serves the files) and
// wrangler's development bundle and options. docs/benchmarks.md measures the difference.

// wrangler's package exports do not list its CLI script, so it is found by path.
const WRANGLER_CLI = fileURLToPath(new URL("../../node_modules/wrangler/bin/wrangler.js", import.meta.url));
const BUILD_TIMEOUT_MS = 120_000;
/** Behind the assets of ASSETS_HOST: a path that is no file answers 404. */
const ASSETS_HOST_SCRIPT = "export default { fetch() { return new Response(null, { status: 404 }); } };\n";

export interface LeanWorkerOptions {
  /** A wrangler config file: its `main` is bundled, its bindings are given to the Worker. */
  config: string;
  /** Variables for the Worker (DATABASE_URL, AUTH_TOKENS, ...), beside the config's own. */
  vars: Record<string, string>;
  /** Open the V8 inspector on this port (127.0.0.1), for a CPU profile; off by default. */
  inspectorPort?: number | undefined;
}

export interface LeanWorker {
  /** workerd's socket that leads straight to the Worker. */
  url: URL;
  stop(): Promise<void>;
}

export async function startLeanWorker(options: LeanWorkerOptions): Promise<LeanWorker> {
  const outdir = await mkdtemp(join(tmpdir(), "glyph-bench-bundle-"));
  try {
    const entry = await buildBundle(options.config, outdir);
    const { workerOptions } = unstable_getMiniflareWorkerOptions(options.config);
    // The bundle is one ES module already; wrangler's module rules are for its own bundler.
    // (wrangler types these options with an Omit<> over Miniflare's union, which loses the field types.)
    const { modulesRules: _unused, assets, ...fromConfig } = workerOptions as unknown as V4WorkerOptions;
    const name = fromConfig.name ?? "worker";
    // Miniflare points a Worker's direct socket at its static-assets router whenever the
    // Worker has assets, so the assets live in a Worker of their own here, bound under the
    // same name: ASSETS.fetch serves a file or answers 404, as in production.
    const assetsHost = `${name}-assets`;
    const assetWorkers: V4WorkerOptions[] =
      assets?.binding === undefined
        ? []
        : [
            {
              name: assetsHost,
              modules: true,
              script: ASSETS_HOST_SCRIPT,
              ...(fromConfig.compatibilityDate === undefined
                ? {}
                : { compatibilityDate: fromConfig.compatibilityDate }),
              assets: {
                ...assets,
                run_worker_first: false,
                routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: false },
              },
            },
          ];
    const worker: V4WorkerOptions = {
      ...fromConfig,
      name,
      modules: true,
      modulesRoot: outdir,
      scriptPath: join(outdir, entry),
      bindings: { ...fromConfig.bindings, ...options.vars },
      serviceBindings: {
        ...fromConfig.serviceBindings,
        ...(assets?.binding === undefined ? {} : { [assets.binding]: assetsHost }),
      },
      unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    };
    const miniflare = new Miniflare(
      convertV4MiniflareOptions({
        workers: [worker, ...assetWorkers],
        ...(options.inspectorPort === undefined
          ? {}
          : { inspectorPort: options.inspectorPort, inspectorHost: "127.0.0.1" }),
      }),
    );
    await miniflare.ready;
    const url = await miniflare.unsafeGetDirectURL(name);
    return {
      url,
      stop: async () => {
        await miniflare.dispose();
        await rm(outdir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(outdir, { recursive: true, force: true });
    throw error;
  }
}

/** `wrangler deploy --dry-run --outdir`: the production build, without uploading it; its entry module's file name. */
async function buildBundle(config: string, outdir: string): Promise<string> {
  await runWranglerBuild(config, outdir);
  // One module, named after the config's `main`.
  const modules = (await readdir(outdir)).filter((file) => file.endsWith(".js"));
  if (modules.length !== 1 || modules[0] === undefined)
    throw new Error(`wrangler's build left ${modules.length} modules in ${outdir}, expected one`);
  return modules[0];
}

function runWranglerBuild(config: string, outdir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [WRANGLER_CLI, "deploy", "--dry-run", "--config", config, "--outdir", outdir],
      {
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-4000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => child.kill("SIGKILL"), BUILD_TIMEOUT_MS);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`wrangler deploy --dry-run exited with ${code}:\n${output}`));
    });
  });
}
