import { z } from "zod";
import { type AccessTokenEntry, AccessTokens } from "../auth/access-tokens";
import { WebhookSecrets } from "../webhooks/webhook-secrets";
import {
  DATABASE_VARIABLES,
  type DatabaseSettings,
  databaseSettings,
  refuseBridgeInProduction,
} from "./database-variables";
import { jsonVariable, optionalVariable } from "./environment-variable";

// The Worker's configuration: every variable and secret it reads, in one schema, parsed
// once per isolate. The bindings (STREAM_ACTOR) are typed by `npm run types`
// (worker-configuration.d.ts); the variables are text, so this schema is what types them.

/** setTimeout fires at once for a delay above 2^31 - 1 ms, so a larger timeout would mean none. */
const MAX_TIMER_MS = 2_147_483_647;
const DEFAULT_DATABASE_TIMEOUT_MS = 10_000;
/**
 * Cloudflare's Durable Object location hints (developers.cloudflare.com, Durable Objects,
 * "Data location"); `satisfies` keeps the list to the runtime's own type.
 */
const ACTOR_LOCATION_HINTS = [
  "wnam",
  "enam",
  "sam",
  "weur",
  "eeur",
  "apac",
  "apac-ne",
  "apac-se",
  "oc",
  "afr",
  "me",
] as const satisfies readonly DurableObjectLocationHint[];
const DEFAULT_FEED_POLL_INTERVAL_MS = 1_000;
const DEFAULT_DEAD_LETTER_AFTER_MS = 24 * 60 * 60 * 1000;
const DEFAULT_DELIVERY_TIMEOUT_MS = 10_000;
const DEFAULT_BODY_TIMEOUT_MS = 10_000;
/** The fan-out the benchmark measures (bench/scenarios/watcher-fanout.ts: up to 1,000 on one stream). */
const DEFAULT_WATCHERS_PER_STREAM = 1_000;
/** Two streams at that fan-out: room for a token's watchers of one stream to reconnect before the old ones' leases are given back. */
const DEFAULT_WATCHERS_PER_TOKEN = 2_000;
const MAX_COUNT = 1_000_000;

/**
 * A whole number from 1 to `max` (`unit` names what it counts in the message), as text
 * (a var) or a number (a wrangler.toml var); `fallback` when unset.
 */
function wholeNumber(fallback: number, max: number, unit: string) {
  return optionalVariable(
    z.unknown().transform((raw, ctx) => {
      const value = typeof raw === "string" && /^\s*\d{1,10}\s*$/.test(raw) ? Number(raw) : raw;
      if (typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= max) return value;
      ctx.addIssue({
        code: "custom",
        message: `must be a whole number${unit} from 1 to ${max}, such as ${fallback}`,
      });
      return z.NEVER;
    }),
  ).transform((value) => value ?? fallback);
}

/** Whole milliseconds, from 1 to the largest delay a timer takes. */
const milliseconds = (fallback: number) => wholeNumber(fallback, MAX_TIMER_MS, " of milliseconds");
/** A count (of watchers, ...). */
const count = (fallback: number) => wholeNumber(fallback, MAX_COUNT, "");

const WorkerVariables = z
  .object({
    ...DATABASE_VARIABLES,
    /** How long a database call may take before the request is answered 503 (default 10000). */
    DATABASE_TIMEOUT_MS: milliseconds(DEFAULT_DATABASE_TIMEOUT_MS),
    /**
     * Where new stream actors are created: one of Cloudflare's location hints (e.g. "enam"
     * beside a Neon region in us-east). Unset: near the first request for the stream.
     */
    ACTOR_LOCATION_HINT: optionalVariable(
      z.enum(ACTOR_LOCATION_HINTS, { error: `must be one of ${ACTOR_LOCATION_HINTS.join(", ")}` }),
    ),
    /** How often the feed actor reads the feed while anyone watches it, whoever wrote (default 1000). */
    FEED_POLL_INTERVAL_MS: milliseconds(DEFAULT_FEED_POLL_INTERVAL_MS),
    /** How long a subscription retries a delivery before it goes to the dead letters (default 24 h). */
    SUBSCRIPTION_DEAD_LETTER_AFTER_MS: milliseconds(DEFAULT_DEAD_LETTER_AFTER_MS),
    /** How long a subscription's receiver may take to answer one delivery (default 10000). */
    SUBSCRIPTION_TIMEOUT_MS: milliseconds(DEFAULT_DELIVERY_TIMEOUT_MS),
    /**
     * "allow" or "refuse" subscription URLs on loopback, private and link-local addresses.
     * Unset: refused when ENVIRONMENT=production, allowed elsewhere (a receiver on this machine).
     */
    SUBSCRIPTION_PRIVATE_TARGETS: optionalVariable(
      z.enum(["allow", "refuse"], { error: 'must be "allow" or "refuse"' }),
    ),
    /** A request body that has not fully arrived after this long is answered 408 (default 10000). */
    BODY_TIMEOUT_MS: milliseconds(DEFAULT_BODY_TIMEOUT_MS),
    /** Most watchers one stream serves at once; the next is closed with 4429 (default 1000). */
    WATCHERS_PER_STREAM: count(DEFAULT_WATCHERS_PER_STREAM),
    /** Most watchers one token has open at once, on all streams; the next is closed with 4429 (default 2000). */
    WATCHERS_PER_TOKEN: count(DEFAULT_WATCHERS_PER_TOKEN),
    /**
     * A secret: JSON list of access tokens by SHA-256 hash, scopes and limits (see README).
     * Unset: no token is accepted, so every route that takes one answers 401.
     */
    AUTH_TOKENS: optionalVariable(jsonVariable(AccessTokens)),
    /**
     * A secret: webhook sources and their secrets, {"<source>": ["whsec_<base64 key>", ...]}.
     * Several secrets per source let one rotate. Unset: no source is configured.
     */
    WEBHOOK_SECRETS: optionalVariable(jsonVariable(WebhookSecrets)),
    /**
     * The Rate Limiting binding that counts requests per token and per webhook source
     * (429 beyond). Production must have it; a local run goes without (decision 27).
     */
    REQUEST_RATE_LIMIT: z
      .custom<RateLimit>((value) => typeof (value as { limit?: unknown } | null)?.limit === "function", {
        error: "must be a Rate Limiting binding",
      })
      .optional(),
  })
  .superRefine(refuseBridgeInProduction)
  .superRefine((variables, ctx) => {
    if (variables.ENVIRONMENT === "production" && variables.REQUEST_RATE_LIMIT === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["REQUEST_RATE_LIMIT"],
        message: "is missing: production counts every request per credential (ENVIRONMENT=production)",
      });
    }
  });

/** Where each variable is set, for the sentence that tells the operator how to fix it. */
const WHERE_TO_SET: Record<keyof z.input<typeof WorkerVariables>, string> = {
  DATABASE_URL: "the DATABASE_URL secret (npx wrangler secret put DATABASE_URL)",
  DATABASE_WS_PROXY: "DATABASE_WS_PROXY (set by npm start only; remove it elsewhere)",
  DATABASE_HTTP_ENDPOINT: "DATABASE_HTTP_ENDPOINT (set by npm start only; remove it elsewhere)",
  ENVIRONMENT: "ENVIRONMENT ([vars] in wrangler.toml)",
  DATABASE_TIMEOUT_MS: "the DATABASE_TIMEOUT_MS var ([vars] in wrangler.toml, or --var)",
  ACTOR_LOCATION_HINT: "the ACTOR_LOCATION_HINT var ([env.production.vars] in wrangler.toml, or --var)",
  FEED_POLL_INTERVAL_MS: "the FEED_POLL_INTERVAL_MS var ([vars] in wrangler.toml, or --var)",
  SUBSCRIPTION_DEAD_LETTER_AFTER_MS:
    "the SUBSCRIPTION_DEAD_LETTER_AFTER_MS var ([vars] in wrangler.toml, or --var)",
  SUBSCRIPTION_TIMEOUT_MS: "the SUBSCRIPTION_TIMEOUT_MS var ([vars] in wrangler.toml, or --var)",
  SUBSCRIPTION_PRIVATE_TARGETS: "the SUBSCRIPTION_PRIVATE_TARGETS var ([vars] in wrangler.toml, or --var)",
  BODY_TIMEOUT_MS: "the BODY_TIMEOUT_MS var ([vars] in wrangler.toml, or --var)",
  WATCHERS_PER_STREAM: "the WATCHERS_PER_STREAM var ([vars] in wrangler.toml, or --var)",
  WATCHERS_PER_TOKEN: "the WATCHERS_PER_TOKEN var ([vars] in wrangler.toml, or --var)",
  AUTH_TOKENS: "the AUTH_TOKENS secret (npx wrangler secret put AUTH_TOKENS; npm run token makes entries)",
  WEBHOOK_SECRETS: "the WEBHOOK_SECRETS secret (npx wrangler secret put WEBHOOK_SECRETS)",
  REQUEST_RATE_LIMIT: "the REQUEST_RATE_LIMIT binding ([[env.production.ratelimits]] in wrangler.toml)",
};
const VARIABLE_NAMES = Object.keys(WHERE_TO_SET) as (keyof typeof WHERE_TO_SET)[];

export interface WorkerConfig {
  database: DatabaseSettings;
  /** A database call that takes longer is abandoned and the request answered 503. */
  databaseTimeoutMs: number;
  /** The location hint new stream actors are created with; undefined: none (near the first caller). */
  actorLocationHint: DurableObjectLocationHint | undefined;
  /** The feed actor's backstop: it reads the feed this often while anyone watches. */
  feedPollIntervalMs: number;
  /** Subscriptions: how long a delivery is retried before it is dead-lettered, how long a receiver may take, and whether private targets are allowed. */
  subscriptions: { deadLetterAfterMs: number; timeoutMs: number; allowPrivateTargets: boolean };
  /** A request body must have arrived within this long (408 otherwise). */
  bodyTimeoutMs: number;
  /** Caps on live watchers: per stream, and per token across streams (4429 beyond). */
  watchersPerStream: number;
  watchersPerToken: number;
  /** Empty when AUTH_TOKENS is unset. */
  accessTokens: readonly AccessTokenEntry[];
  /** Empty when WEBHOOK_SECRETS is unset. */
  webhookSecrets: WebhookSecrets;
  /** Counts requests per credential; undefined in a local run, which has no limit. */
  requestRateLimit: RateLimit | undefined;
}

/** The configuration cannot be used. The message names each variable and what it must hold, never a value. */
export class InvalidWorkerConfig extends Error {
  override readonly name = "InvalidWorkerConfig";
  constructor(
    /** The variables to fix, in the order of the schema. */
    readonly variables: readonly string[],
    /** One sentence per problem, each starting with the variable (and the path inside it). */
    readonly problems: readonly string[],
  ) {
    super(`The Worker's configuration is invalid: ${problems.join("; ")}.`);
  }

  /** What the operator must change, variable by variable. */
  get howToFix(): string {
    const places = VARIABLE_NAMES.filter((name) => this.variables.includes(name)).map(
      (name) => WHERE_TO_SET[name],
    );
    return `Fix ${places.join(" and ")}; see the README's Configuration.`;
  }
}

export type WorkerConfigResult =
  | { ok: true; config: WorkerConfig }
  | { ok: false; error: InvalidWorkerConfig };

function parse(environment: Record<string, unknown>): WorkerConfigResult {
  const parsed = WorkerVariables.safeParse(environment);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const variables = [...new Set(issues.map((issue) => String(issue.path[0] ?? "(environment)")))];
    const problems = issues.map((issue) => `${issue.path.map(String).join(".")}: ${issue.message}`);
    return { ok: false, error: new InvalidWorkerConfig(variables, problems) };
  }
  const variables = parsed.data;
  return {
    ok: true,
    config: {
      database: databaseSettings(variables),
      databaseTimeoutMs: variables.DATABASE_TIMEOUT_MS,
      actorLocationHint: variables.ACTOR_LOCATION_HINT,
      feedPollIntervalMs: variables.FEED_POLL_INTERVAL_MS,
      subscriptions: {
        deadLetterAfterMs: variables.SUBSCRIPTION_DEAD_LETTER_AFTER_MS,
        timeoutMs: variables.SUBSCRIPTION_TIMEOUT_MS,
        allowPrivateTargets:
          (variables.SUBSCRIPTION_PRIVATE_TARGETS ??
            (variables.ENVIRONMENT === "production" ? "refuse" : "allow")) === "allow",
      },
      bodyTimeoutMs: variables.BODY_TIMEOUT_MS,
      watchersPerStream: variables.WATCHERS_PER_STREAM,
      watchersPerToken: variables.WATCHERS_PER_TOKEN,
      accessTokens: variables.AUTH_TOKENS ?? [],
      webhookSecrets: variables.WEBHOOK_SECRETS ?? new Map(),
      requestRateLimit: variables.REQUEST_RATE_LIMIT,
    },
  };
}

// The bindings object is the same for every request of an isolate, but tests hand the
// Worker other ones; keyed by the object and its raw values, a change is seen and nothing
// is parsed twice. The same object is taken at its word (bindings cannot change under a
// running isolate): comparing every value on every call cost more than the request's own
// routing (docs/cpu-profile.md).
let cached: { env: object; raw: unknown[]; result: WorkerConfigResult } | undefined;

/** The Worker's configuration from its bindings, or why it cannot be used. */
export function readWorkerConfig(env: object): WorkerConfigResult {
  if (cached?.env === env) return cached.result;
  const environment = env as Record<string, unknown>;
  const raw = VARIABLE_NAMES.map((name) => environment[name]);
  if (cached === undefined || raw.some((value, index) => value !== cached?.raw[index])) {
    cached = { env, raw, result: parse(environment) };
  } else {
    cached = { ...cached, env };
  }
  return cached.result;
}

/** The Worker's configuration; throws InvalidWorkerConfig when a variable is invalid. */
export function workerConfig(env: object): WorkerConfig {
  const result = readWorkerConfig(env);
  if (!result.ok) throw result.error;
  return result.config;
}
