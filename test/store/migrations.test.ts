import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { MIGRATIONS_DIR, MigrationError, migrate, readMigrationFiles } from "../../scripts/lib/migrations";
import { openTestPool } from "../support/database";

const pool = openTestPool(4);
const schemas: string[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function freshSchema(): string {
  const schema = `migrations_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  schemas.push(schema);
  return schema;
}

async function copyOfMigrations(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "glyph-migrations-"));
  dirs.push(dir);
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

async function tablesIn(schema: string): Promise<string[]> {
  const result = await pool.query(
    "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    [schema],
  );
  return result.rows.map((row) => (row as { name: string }).name);
}

it("applies every migration once and nothing on a second run", async () => {
  const schema = freshSchema();
  const files = await readMigrationFiles();
  expect(files.length).toBeGreaterThanOrEqual(2);
  const first = await migrate(pool, { schema });
  expect(first).toEqual({ applied: files.map((f) => f.name), alreadyApplied: [] });
  const second = await migrate(pool, { schema });
  expect(second).toEqual({ applied: [], alreadyApplied: files.map((f) => f.name) });
  expect(await tablesIn(schema)).toEqual([
    "feed_subscription_dead_letters",
    "feed_subscriptions",
    "schema_migrations",
    "webhook_deliveries",
    "workflow_events",
    "workflow_snapshots",
    "workflow_streams",
  ]);
});

it("lets concurrent runs wait for each other instead of applying twice", async () => {
  const schema = freshSchema();
  await pool.query(`CREATE SCHEMA "${schema}"`);
  const reports = await Promise.all([migrate(pool, { schema }), migrate(pool, { schema })]);
  const applied = reports.flatMap((report) => report.applied);
  expect(applied.sort()).toEqual((await readMigrationFiles()).map((f) => f.name).sort());
});

it("refuses to run when an applied migration changed, and applies nothing new", async () => {
  const schema = freshSchema();
  const dir = await copyOfMigrations();
  await migrate(pool, { schema, dir });
  await writeFile(join(dir, "0001_workflow_events.sql"), "-- edited after it was applied\nSELECT 1;\n");
  await writeFile(join(dir, "0099_new_table.sql"), "CREATE TABLE should_not_exist (id int);\n");
  const error = await migrate(pool, { schema, dir }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(MigrationError);
  expect((error as Error).message).toMatch(/0001_workflow_events\.sql was changed after it was applied/);
  expect(await tablesIn(schema)).not.toContain("should_not_exist");
});

it("refuses when an applied migration's file is gone", async () => {
  const schema = freshSchema();
  const dir = await copyOfMigrations();
  await migrate(pool, { schema, dir });
  await rm(join(dir, "0002_workflow_snapshots.sql"));
  await expect(migrate(pool, { schema, dir })).rejects.toThrow(
    /0002_workflow_snapshots\.sql was applied .* file is missing/,
  );
});

it("rolls a failing run back whole, earlier pending files included", async () => {
  const schema = freshSchema();
  const dir = await copyOfMigrations();
  await migrate(pool, { schema, dir });
  await writeFile(join(dir, "0050_fine.sql"), "CREATE TABLE fine_alone (id int);\n");
  await writeFile(
    join(dir, "0051_broken.sql"),
    "CREATE TABLE half_done (id int);\nSELECT no_such_function();\n",
  );
  await expect(migrate(pool, { schema, dir })).rejects.toThrow(
    /0051_broken\.sql failed, so nothing of this run/,
  );
  const tables = await tablesIn(schema);
  expect(tables).not.toContain("half_done");
  expect(tables).not.toContain("fine_alone");
  const recorded = await pool.query(`SELECT name FROM "${schema}".schema_migrations ORDER BY name`);
  const shipped = (await readMigrationFiles()).map((file) => file.name);
  expect(recorded.rows.map((row) => (row as { name: string }).name)).toEqual(shipped);
});

it("refuses files that are not named like 0001_description.sql", async () => {
  const dir = await copyOfMigrations();
  await writeFile(join(dir, "3_oops.sql"), "SELECT 1;");
  await expect(readMigrationFiles(dir)).rejects.toThrow(/3_oops\.sql is not named like/);
});
