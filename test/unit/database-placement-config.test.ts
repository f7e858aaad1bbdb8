import { describe, expect, it } from "vitest";
import { readWorkerConfig, workerConfig } from "../../src/config/worker-config";
import { readDatabaseSettings } from "../../src/db/database-settings";

// Where the Worker's database calls go (DATABASE_HTTP_ENDPOINT: a local stand-in for
// Neon's /sql, never in production) and where its stream actors are created
// (ACTOR_LOCATION_HINT: one of Cloudflare's location hints).

const DATABASE_URL = "postgres://glyph:secret-password@db.example.com/glyph";

function problems(env: Record<string, unknown>): readonly string[] {
  const result = readWorkerConfig(env);
  if (result.ok) throw new Error(`expected ${JSON.stringify(env)} to be refused`);
  return result.error.problems;
}

describe("DATABASE_HTTP_ENDPOINT", () => {
  it("points the driver's HTTP queries at a local /sql endpoint", () => {
    const config = workerConfig({ DATABASE_URL, DATABASE_HTTP_ENDPOINT: "http://127.0.0.1:5489/sql" });
    expect(config.database).toEqual({ DATABASE_URL, DATABASE_HTTP_ENDPOINT: "http://127.0.0.1:5489/sql" });
    expect(workerConfig({ DATABASE_URL, DATABASE_HTTP_ENDPOINT: "" }).database).toEqual({ DATABASE_URL });
  });

  it("must be an http(s) URL", () => {
    for (const value of ["127.0.0.1:5489/sql", "ws://127.0.0.1:5489/sql", "http://host/sql?x=1"]) {
      expect(problems({ DATABASE_URL, DATABASE_HTTP_ENDPOINT: value })).toEqual([
        expect.stringMatching(
          /^DATABASE_HTTP_ENDPOINT: must look like http:\/\/127\.0\.0\.1:5489\/sql\/<secret>/,
        ),
      ]);
    }
  });

  it("is refused in production, like the WebSocket bridge, for the Worker and for Node tools", () => {
    const env = {
      DATABASE_URL,
      ENVIRONMENT: "production",
      DATABASE_HTTP_ENDPOINT: "http://127.0.0.1:5489/sql",
      DATABASE_WS_PROXY: "ws://127.0.0.1:5488/v1/secret",
    };
    const refused = problems(env);
    expect(refused).toContainEqual(
      expect.stringMatching(/^DATABASE_HTTP_ENDPOINT: is a local-development setting/),
    );
    expect(refused).toContainEqual(
      expect.stringMatching(/^DATABASE_WS_PROXY: is a local-development setting/),
    );
    expect(() => readDatabaseSettings(env)).toThrow(/DATABASE_HTTP_ENDPOINT/);
  });
});

describe("ACTOR_LOCATION_HINT", () => {
  it("is unset by default: actors are created near their first caller", () => {
    expect(workerConfig({ DATABASE_URL }).actorLocationHint).toBeUndefined();
    expect(workerConfig({ DATABASE_URL, ACTOR_LOCATION_HINT: " " }).actorLocationHint).toBeUndefined();
  });

  it("takes each of Cloudflare's location hints", () => {
    for (const hint of [
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
    ]) {
      expect(workerConfig({ DATABASE_URL, ACTOR_LOCATION_HINT: hint }).actorLocationHint).toBe(hint);
    }
  });

  it("refuses anything else, naming the variable and the hints", () => {
    for (const value of ["us-east-1", "ENAM", "eu", "enam "]) {
      expect(problems({ DATABASE_URL, ACTOR_LOCATION_HINT: value })).toEqual([
        expect.stringMatching(/^ACTOR_LOCATION_HINT: must be one of wnam, enam, sam, weur, eeur, apac/),
      ]);
    }
  });
});
