import type { DatabaseSettings } from "../src/db/database-settings";
import { readDatabaseSettings } from "../src/db/database-settings";
import { migrate } from "./lib/migrations";
import { openNodeDatabase } from "./lib/node-database";

// `npm run migrate`: applies pending migrations to DATABASE_URL. A problem is one
// sentence and exit code 1, never a stack trace.

let settings: DatabaseSettings;
try {
  settings = readDatabaseSettings(process.env);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
const database = await openNodeDatabase(settings, 1);
try {
  const report = await migrate(database.pool);
  for (const name of report.applied) console.log(`applied ${name}`);
  console.log(`${report.applied.length} applied, ${report.alreadyApplied.length} already applied`);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await database.close();
}
