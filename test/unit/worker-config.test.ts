import { describe, expect, it } from "vitest";
import { InvalidWorkerConfig, readWorkerConfig, workerConfig } from "../../src/config/worker-config";
import { readDatabaseSettings } from "../../src/db/database-settings";

// The Worker's configuration: one schema for every variable, defaults only for what
// is unset, and an invalid value refused with a message that names the variable.

const DATABASE_URL = "postgres://glyph:secret-password@db.example.com/glyph";
const TOKEN = { id: "ci", sha256: "a".repeat(64), scopes: ["read"] };
const WEBHOOK_KEY = "whsec_GhloRf6yH0XHh7sqXylmJNHPLW6HWWchO8k2NR2nZsM=";

/** Enough of a Rate Limiting binding for the configuration to take it as one. */
const RATE_LIMIT_BINDING = { limit: async () => ({ success: true }) };

function refusal(env: Record<string, unknown>): InvalidWorkerConfig {
  const result = readWorkerConfig(env);
  if (result.ok) throw new Error(`expected ${JSON.stringify(env)} to be refused`);
  return result.error;
}

describe("a valid configuration", () => {
  it("needs only DATABASE_URL; everything else has a default or is empty", () => {
    const config = workerConfig({ DATABASE_URL });
    expect(config).toEqual({
      database: { DATABASE_URL },
      databaseTimeoutMs: 10_000,
      feedPollIntervalMs: 1_000,
      bodyTimeoutMs: 10_000,
      watchersPerStream: 1_000,
      watchersPerToken: 2_000,
      subscriptions: { deadLetterAfterMs: 86_400_000, timeoutMs: 10_000, allowPrivateTargets: true },
      accessTokens: [],
      webhookSecrets: new Map(),
      requestRateLimit: undefined,
    });
  });

  it("reads every variable, numbers as text or as numbers, JSON as text or as a value", () => {
    const config = workerConfig({
      DATABASE_URL,
      DATABASE_WS_PROXY: "ws://127.0.0.1:5488/v1",
      DATABASE_TIMEOUT_MS: "2500",
      AUTH_TOKENS: JSON.stringify([TOKEN]),
      WEBHOOK_SECRETS: { acme: [WEBHOOK_KEY] },
      REQUEST_RATE_LIMIT: RATE_LIMIT_BINDING,
    });
    expect(config.requestRateLimit).toBe(RATE_LIMIT_BINDING);
    expect(config.database).toEqual({ DATABASE_URL, DATABASE_WS_PROXY: "ws://127.0.0.1:5488/v1" });
    expect(config.databaseTimeoutMs).toBe(2500);
    expect(config.accessTokens).toEqual([TOKEN]);
    expect([...config.webhookSecrets.keys()]).toEqual(["acme"]);
    expect(config.webhookSecrets.get("acme")?.keys[0]?.length).toBe(32);
    expect(config.webhookSecrets.get("acme")?.scope).toEqual({ streams: undefined, streamTypes: undefined });
  });

  it("takes a blank variable as unset, not as invalid", () => {
    const config = workerConfig({
      DATABASE_URL,
      DATABASE_WS_PROXY: "",
      DATABASE_TIMEOUT_MS: " ",
      AUTH_TOKENS: "",
      WEBHOOK_SECRETS: "",
    });
    expect(config.database).toEqual({ DATABASE_URL });
    expect(config.databaseTimeoutMs).toBe(10_000);
    expect(config.accessTokens).toEqual([]);
  });

  it("is parsed once for the same values, and again when a value changes", () => {
    const env = { DATABASE_URL, AUTH_TOKENS: JSON.stringify([TOKEN]) };
    const first = workerConfig(env);
    expect(workerConfig({ ...env })).toBe(first);
    const changed = workerConfig({ ...env, DATABASE_TIMEOUT_MS: "99" });
    expect(changed).not.toBe(first);
    expect(changed.databaseTimeoutMs).toBe(99);
  });
});

describe("an invalid value is refused, naming the variable", () => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ["DATABASE_URL unset", {}, "DATABASE_URL", /DATABASE_URL: is not set/],
    ["DATABASE_URL not postgres", { DATABASE_URL: "mysql://db/x" }, "DATABASE_URL", /postgres:\/\//],
    [
      "DATABASE_WS_PROXY not a ws:// URL",
      { DATABASE_URL, DATABASE_WS_PROXY: "127.0.0.1:5488" },
      "DATABASE_WS_PROXY",
      /DATABASE_WS_PROXY: must look like ws:\/\//,
    ],
    [
      "DATABASE_WS_PROXY in production",
      {
        DATABASE_URL,
        DATABASE_WS_PROXY: "ws://127.0.0.1:5488/v1",
        ENVIRONMENT: "production",
        REQUEST_RATE_LIMIT: RATE_LIMIT_BINDING,
      },
      "DATABASE_WS_PROXY",
      /DATABASE_WS_PROXY: is a local-development setting and must not be set in production/,
    ],
    [
      "production without the Rate Limiting binding",
      { DATABASE_URL, ENVIRONMENT: "production" },
      "REQUEST_RATE_LIMIT",
      /REQUEST_RATE_LIMIT: is missing: production counts every request per credential/,
    ],
    [
      "a REQUEST_RATE_LIMIT that is not a binding",
      { DATABASE_URL, REQUEST_RATE_LIMIT: "1000" },
      "REQUEST_RATE_LIMIT",
      /REQUEST_RATE_LIMIT: must be a Rate Limiting binding/,
    ],
    ...["abc", "0", "-5", "1.5", "10s", "2147483648"].map(
      (value): [string, Record<string, unknown>, string, RegExp] => [
        `DATABASE_TIMEOUT_MS ${JSON.stringify(value)}`,
        { DATABASE_URL, DATABASE_TIMEOUT_MS: value },
        "DATABASE_TIMEOUT_MS",
        /DATABASE_TIMEOUT_MS: must be a whole number of milliseconds from 1 to 2147483647/,
      ],
    ),
    ...["0", "-1", "2.5", "1000001", "lots"].map(
      (value): [string, Record<string, unknown>, string, RegExp] => [
        `WATCHERS_PER_STREAM ${JSON.stringify(value)}`,
        { DATABASE_URL, WATCHERS_PER_STREAM: value },
        "WATCHERS_PER_STREAM",
        /WATCHERS_PER_STREAM: must be a whole number from 1 to 1000000, such as 1000/,
      ],
    ),
    [
      "WATCHERS_PER_TOKEN 0 as a number",
      { DATABASE_URL, WATCHERS_PER_TOKEN: 0 },
      "WATCHERS_PER_TOKEN",
      /WATCHERS_PER_TOKEN: must be a whole number from 1/,
    ],
    [
      "BODY_TIMEOUT_MS in seconds",
      { DATABASE_URL, BODY_TIMEOUT_MS: "10s" },
      "BODY_TIMEOUT_MS",
      /BODY_TIMEOUT_MS: must be a whole number of milliseconds/,
    ],
    [
      "DATABASE_TIMEOUT_MS 0 as a number",
      { DATABASE_URL, DATABASE_TIMEOUT_MS: 0 },
      "DATABASE_TIMEOUT_MS",
      /DATABASE_TIMEOUT_MS: must be a whole number/,
    ],
    [
      "AUTH_TOKENS not JSON",
      { DATABASE_URL, AUTH_TOKENS: "[{id: ci}" },
      "AUTH_TOKENS",
      /AUTH_TOKENS: is not valid JSON/,
    ],
    [
      "AUTH_TOKENS with a bad hash",
      { DATABASE_URL, AUTH_TOKENS: JSON.stringify([{ ...TOKEN, sha256: "xyz" }]) },
      "AUTH_TOKENS",
      /AUTH_TOKENS\.0\.sha256: sha256 must be 64 lower-case hex digits/,
    ],
    [
      "WEBHOOK_SECRETS without the whsec_ prefix",
      { DATABASE_URL, WEBHOOK_SECRETS: JSON.stringify({ acme: [WEBHOOK_KEY.slice("whsec_".length)] }) },
      "WEBHOOK_SECRETS",
      /WEBHOOK_SECRETS\.acme\.0: expected whsec_/,
    ],
  ];
  for (const [name, env, variable, message] of cases) {
    it(name, () => {
      const error = refusal(env);
      expect(error.variables).toEqual([variable]);
      expect(error.message).toMatch(message);
      expect(error.howToFix).toContain(variable);
      expect(() => workerConfig(env)).toThrow(InvalidWorkerConfig);
    });
  }

  it("names every invalid variable at once", () => {
    const error = refusal({ DATABASE_URL, DATABASE_TIMEOUT_MS: "soon", AUTH_TOKENS: "{" });
    expect(error.variables).toEqual(["DATABASE_TIMEOUT_MS", "AUTH_TOKENS"]);
    expect(error.howToFix).toMatch(/DATABASE_TIMEOUT_MS var .* and the AUTH_TOKENS secret/);
  });

  it("never quotes a secret's value", () => {
    const secretText = "not JSON but a secret: whsec_hunter2hunter2";
    const error = refusal({
      DATABASE_URL: "mysql://user:hunter2@db",
      AUTH_TOKENS: secretText,
      WEBHOOK_SECRETS: secretText,
    });
    expect(`${error.message} ${error.howToFix}`).not.toMatch(/hunter2/);
  });
});

describe("Node tools' database settings", () => {
  it("follow the same rules as the Worker's", () => {
    expect(readDatabaseSettings({ DATABASE_URL, DATABASE_WS_PROXY: "" })).toEqual({ DATABASE_URL });
    expect(() => readDatabaseSettings({})).toThrow(/DATABASE_URL: is not set/);
    expect(() =>
      readDatabaseSettings({
        DATABASE_URL,
        DATABASE_WS_PROXY: "ws://127.0.0.1:1/v1",
        ENVIRONMENT: "production",
      }),
    ).toThrow(/must not be set in production/);
  });
});
