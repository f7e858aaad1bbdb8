import { type DatabaseSettings, DatabaseVariables, databaseSettings } from "../config/database-variables";
import { describeIssues } from "../events/wire";

export type { DatabaseSettings };

/**
 * The database settings of a Node tool (migrations, tests, benchmarks) from its
 * environment, by the Worker's own rules; throws with every problem named.
 */
export function readDatabaseSettings(environment: object): DatabaseSettings {
  const parsed = DatabaseVariables.safeParse(environment);
  if (!parsed.success) throw new Error(`Database configuration is invalid: ${describeIssues(parsed.error)}`);
  return databaseSettings(parsed.data);
}
