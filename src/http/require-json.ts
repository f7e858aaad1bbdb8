import type { Context } from "hono";
import { problem } from "./problem";

/** The 415 problem for a body that is not declared as JSON; undefined when it is. */
export function refuseNonJson(c: Context, what: string): Response | undefined {
  const type = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type === "application/json") return undefined;
  return problem(c, {
    status: 415,
    code: "unsupported_media_type",
    title: "Unsupported media type",
    detail: `Send ${what} as JSON with the header Content-Type: application/json.`,
  });
}
