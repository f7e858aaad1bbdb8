/**
 * What the store needs of the database driver: one statement and its rows. A
 * @neondatabase/serverless Pool is one; so is anything wrapping it, such as
 * countStatements.
 */
export interface SqlQueryable {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * `client`, telling `counted` of every statement it is given, before it is sent. Each
 * call is exactly one statement (the store sends no multi-statement strings and no
 * BEGIN/COMMIT), so this counts the database round trips of whatever uses it.
 */
export function countStatements(client: SqlQueryable, counted: (text: string) => void): SqlQueryable {
  return {
    query(text, values) {
      counted(text);
      return client.query(text, values);
    },
  };
}
