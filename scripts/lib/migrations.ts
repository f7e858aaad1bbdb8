import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pool, PoolClient } from "@neondatabase/serverless";

// Plain numbered SQL files, applied in order in one transaction and recorded
// with a checksum. We keep this runner (about a hundred lines) rather than
// take node-pg-migrate or postgres-migrations: the first does not refuse changed
// files, the second is unmaintained, and both bring the `pg` driver alongside the
// one the product uses.

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

const FILE_PATTERN = /^(\d{4})_[a-z0-9_]+\.sql$/;
/** Any fixed number: holders of this advisory lock are migration runs. */
const MIGRATION_LOCK = 7_302_117;

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: string[];
}

export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

export async function readMigrationFiles(dir = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith(".sql")).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    if (!FILE_PATTERN.test(name)) {
      throw new MigrationError(`Migration file ${name} is not named like 0001_description.sql.`);
    }
    const sql = await readFile(join(dir, name), "utf8");
    // Line endings are not content: a checkout with CRLF must not count as a change.
    const checksum = createHash("sha256").update(sql.replace(/\r\n/g, "\n")).digest("hex");
    files.push({ name, sql, checksum });
  }
  return files;
}

/**
 * Applies the pending migrations, all in one transaction: either every pending file
 * is applied and recorded, or none is. Refuses, before applying anything, when an
 * applied migration's file has changed or disappeared. Concurrent runs wait for each
 * other on a transaction-scoped advisory lock. `schema` puts everything (the record
 * table too) into that schema, for isolated tests; it is set per transaction so that
 * it never outlives the run, even behind a pooler that shares sessions.
 */
export async function migrate(
  pool: Pool,
  options: { dir?: string; schema?: string } = {},
): Promise<MigrationReport> {
  const files = await readMigrationFiles(options.dir);
  const client = await pool.connect();
  try {
    if (options.schema !== undefined) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(options.schema)}`);
    }
    await client.query("BEGIN");
    try {
      if (options.schema !== undefined) {
        await client.query(`SET LOCAL search_path TO ${quoteIdentifier(options.schema)}`);
      }
      await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      const report = await applyPending(client, files);
      await client.query("COMMIT");
      return report;
    } catch (error) {
      await client.query("ROLLBACK");
      throw error;
    }
  } finally {
    client.release();
  }
}

async function applyPending(client: PoolClient, files: MigrationFile[]): Promise<MigrationReport> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const recorded = await client.query("SELECT name, checksum FROM schema_migrations ORDER BY name");
  const applied = new Map<string, string>();
  for (const row of recorded.rows as Array<{ name: unknown; checksum: unknown }>) {
    applied.set(String(row.name), String(row.checksum));
  }
  const byName = new Map(files.map((file) => [file.name, file]));
  for (const [name, checksum] of applied) {
    const file = byName.get(name);
    if (file === undefined) {
      throw new MigrationError(
        `Migration ${name} was applied to this database but its file is missing; restore it (applied migrations are never deleted).`,
      );
    }
    if (file.checksum !== checksum) {
      throw new MigrationError(
        `Migration ${name} was changed after it was applied (checksum ${checksum.slice(0, 12)}… became ${file.checksum.slice(0, 12)}…); ` +
          "restore the original file and put the change in a new migration.",
      );
    }
  }
  const report: MigrationReport = { applied: [], alreadyApplied: [] };
  for (const file of files) {
    if (applied.has(file.name)) {
      report.alreadyApplied.push(file.name);
      continue;
    }
    try {
      await client.query(file.sql);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new MigrationError(
        `Migration ${file.name} failed, so nothing of this run was applied: ${detail}`,
        {
          cause: error,
        },
      );
    }
    await client.query("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", [
      file.name,
      file.checksum,
    ]);
    report.applied.push(file.name);
  }
  return report;
}

function quoteIdentifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
    throw new MigrationError(`Schema name ${name} is not a plain identifier.`);
  return `"${name}"`;
}
