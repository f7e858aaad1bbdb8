import { readDatabaseSettings } from "../src/db/database-settings";
import { migrate } from "./lib/migrations";
import { openNodeDatabase } from "./lib/node-database";

// `npm run migrate`: applies pending migrations to DATABASE_URL.
const database = await openNodeDatabase(readDatabaseSettings(process.env), 1);
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
