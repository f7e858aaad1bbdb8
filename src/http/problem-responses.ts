import { ProblemResponse } from "./schemas";

const DESCRIPTIONS: Record<number, string> = {
  400: "The request is malformed; the detail names each field",
  401: "Missing or invalid credentials",
  403: "Not allowed",
  404: "Not found",
  409: "Conflict: version, stream type or event id",
  413: "Too large: body, events per append or metadata",
  415: "Not JSON",
  422: "The events break the workflow rules",
  500: "Stored data is corrupt",
  503: "The database is unavailable; retry",
};

/** OpenAPI entries for problem responses with these statuses. */
export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: DESCRIPTIONS[status] ?? "Problem",
        content: { "application/problem+json": { schema: ProblemResponse } },
      },
    ]),
  );
}
