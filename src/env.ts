/**
 * Transitional, until src/actor reads its settings through workerConfig()
 * (src/config/worker-config.ts): the generated bindings (worker-configuration.d.ts,
 * `npm run types`) plus the two variables the stream actor still reads directly.
 */
export type Env = Cloudflare.Env & { DATABASE_TIMEOUT_MS?: string; DATABASE_IDLE_TIMEOUT_MS?: string };
