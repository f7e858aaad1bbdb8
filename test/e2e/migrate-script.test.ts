import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, inject, it } from "vitest";

// `npm run migrate` (scripts/migrate.ts) as a user runs it: against the run's database it
// reports what it applied; without DATABASE_URL it says so in one sentence, exit 1.

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function runMigrate(env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "scripts/migrate.ts"],
      { cwd: ROOT, env, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

it("applies nothing twice: against a migrated database every migration is already applied", async () => {
  const run = await runMigrate({
    ...process.env,
    DATABASE_URL: inject("databaseUrl"),
    DATABASE_WS_PROXY: inject("databaseWsProxy"),
  });
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/^0 applied, [1-9]\d* already applied$/m);
});

it("without DATABASE_URL: one sentence naming it, exit 1, no stack trace", async () => {
  const { DATABASE_URL: _url, DATABASE_WS_PROXY: _proxy, ...rest } = process.env;
  const run = await runMigrate(rest);
  expect(run.code).toBe(1);
  expect(run.stdout).toBe("");
  expect(run.stderr.trim()).toMatch(/^Database configuration is invalid: DATABASE_URL: is not set/);
  expect(run.stderr.trim().split("\n")).toHaveLength(1);
});
