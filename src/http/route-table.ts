// The routes the API serves, by path shape, to tell 405 (wrong method) from 404.
const ROUTES: ReadonlyArray<{ pattern: RegExp; methods: readonly string[] }> = [
  { pattern: /^\/healthz$/, methods: ["GET"] },
  { pattern: /^\/openapi\.json$/, methods: ["GET"] },
  { pattern: /^\/streams\/?$/, methods: ["GET"] },
  { pattern: /^\/streams\/[^/]+$/, methods: ["GET"] },
  { pattern: /^\/streams\/[^/]+\/events$/, methods: ["GET", "POST"] },
  { pattern: /^\/streams\/[^/]+\/state$/, methods: ["GET"] },
  { pattern: /^\/webhooks\/[^/]+$/, methods: ["POST"] },
  { pattern: /^\/streams\/[^/]+\/watch$/, methods: ["GET"] },
];

/** The methods served at this path; empty when nothing is. */
export function allowedMethods(path: string): readonly string[] {
  return ROUTES.find((route) => route.pattern.test(path))?.methods ?? [];
}
