import type { Context } from "hono";
import type { z } from "zod";
import { describeIssues } from "../events/wire";
import { problem } from "./problem";

const WHERE: Record<string, string> = {
  json: "The request body",
  query: "The query string",
  param: "The URL",
  header: "A header",
};

/** A 400 (or 413 for size limits) naming every field that failed and why. */
export function validationProblem(c: Context, error: z.ZodError, target: string): Response {
  const tooLarge = error.issues.some(
    (issue) =>
      (issue.code === "custom" && (issue.params as { status?: number } | undefined)?.status === 413) ||
      (issue.code === "too_big" && issue.path.length === 1 && issue.path[0] === "events"),
  );
  const where = WHERE[target] ?? "The request";
  const detail = `${where} is invalid: ${describeIssues(error)}.`;
  const errors = error.issues.slice(0, 20).map((issue) => ({
    pointer: `/${issue.path.map(String).join("/")}`,
    detail: issue.message,
  }));
  if (tooLarge) return problem(c, 413, "too_large", "Request too large", detail, { errors });
  return problem(c, 400, "invalid_request", "Invalid request", detail, { errors });
}
