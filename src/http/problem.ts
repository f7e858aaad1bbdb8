import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { JsonValue } from "../events/wire";

/** An RFC 9457 problem document. `detail` says what was wrong and how to fix it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: JsonValue;
}

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** A problem response; the request path is its `instance`. Extensions cannot override the standard members. */
export function problem(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  title: string,
  detail: string,
  extensions: Record<string, JsonValue> = {},
  headers: Record<string, string> = {},
): Response {
  const body: Problem = {
    instance: new URL(c.req.url).pathname,
    ...extensions,
    type: `urn:glyph-streams:problem:${code}`,
    title,
    status,
    detail,
  };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": PROBLEM_CONTENT_TYPE, ...headers },
  });
}
