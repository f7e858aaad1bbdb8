import { fileURLToPath } from "node:url";
import { unstable_DevEnv } from "wrangler";

// The one way this project starts its Worker outside production: wrangler's dev
// environment (what `wrangler dev` and `unstable_startWorker` use) running the real
// wrangler.toml in workerd, with every setting passed as a binding, never written to a
// file. `npm start` and the end-to-end and reliability tests use it; the benchmark runs
// the Worker leaner (bench/lib/lean-worker.ts) and uses this for npm start's rows.

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const LOCAL_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;
/** How long to wait for workerd to announce the user Worker's own address after a start. */
const ADDRESS_TIMEOUT_MS = 30_000;

export interface LocalWorkerOptions {
  /** Variables for the Worker (DATABASE_URL, AUTH_TOKENS, ...); .dev.vars is read too, and these win. */
  vars: Record<string, string>;
  /** The dev proxy's port; 0 (default) picks a free one. */
  port?: number;
  /** "info" logs every request as `wrangler dev` does; "warn" (default) only problems. */
  logLevel?: "info" | "warn" | "error" | "none";
  /** Reload on source changes, as `wrangler dev` does. */
  watch?: boolean;
  /** Open the V8 inspector on this port (127.0.0.1), for a CPU profile; off by default: it costs CPU. */
  inspectorPort?: number;
  /**
   * Another Worker instead of this project's: by its entrypoint, or by a wrangler config
   * file of its own (the benchmark's trivial Workers, which have assets and bindings).
   */
  source?: { name: string; entrypoint: string; compatibilityDate: string } | { config: string };
}

export interface LocalWorker {
  /** The user Worker's own socket in workerd: what production serves, without wrangler's proxy. */
  url: URL;
  /** wrangler's dev proxy in front of it: the address `wrangler dev` prints. */
  proxyUrl: URL;
  stop(): Promise<void>;
}

export async function startLocalWorker(options: LocalWorkerOptions): Promise<LocalWorker> {
  // No metrics, and no download of the Request.cf sample (offline it costs a timeout and a stack trace).
  process.env.WRANGLER_SEND_METRICS = "false";
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  const devEnv = new unstable_DevEnv();
  const direct = new Promise<URL | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ADDRESS_TIMEOUT_MS);
    devEnv.on("reloadComplete", (event: unknown) => {
      const origin = userWorkerOrigin(event);
      if (origin === undefined) return;
      clearTimeout(timer);
      resolve(origin);
    });
  });
  const plain = (value: string) => ({ type: "plain_text" as const, value });
  const worker = await devEnv.startWorker({
    ...(options.source ?? { config: `${ROOT}wrangler.toml` }),
    bindings: Object.fromEntries(Object.entries(options.vars).map(([name, value]) => [name, plain(value)])),
    dev: {
      server: { hostname: "127.0.0.1", port: options.port ?? 0 },
      inspector:
        options.inspectorPort === undefined ? false : { hostname: "127.0.0.1", port: options.inspectorPort },
      watch: options.watch ?? false,
      persist: false,
      logLevel: options.logLevel ?? "warn",
    },
  });
  await worker.ready;
  const proxyUrl = await worker.url;
  return {
    url: (await direct) ?? proxyUrl,
    proxyUrl,
    stop: () => worker.dispose(),
  };
}

/** The user Worker's address, from wrangler's reloadComplete event (not part of its typed API). */
function userWorkerOrigin(event: unknown): URL | undefined {
  const proxyData = (event as { proxyData?: { userWorkerUrl?: Record<string, unknown> } } | null)?.proxyData;
  const origin = proxyData?.userWorkerUrl;
  if (origin === undefined) return undefined;
  const { protocol, hostname, port } = origin;
  if (typeof protocol !== "string" || typeof hostname !== "string" || typeof port !== "string")
    return undefined;
  if (!LOCAL_HOSTS.test(hostname)) return undefined;
  return new URL(`${protocol}//${hostname}:${port}/`);
}
