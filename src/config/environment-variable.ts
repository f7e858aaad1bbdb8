import { z } from "zod";

// How one environment variable is read, alike for the Worker (its bindings) and for
// Node tools (process.env): a blank value is a variable that is not set, and JSON may
// arrive as text or as a value.

/** `NAME=` in .dev.vars, `--var NAME:` and `NAME= npm start` all give "": not set, not invalid. */
function blankAsUnset(value: unknown): unknown {
  return typeof value === "string" && value.trim() === "" ? undefined : value;
}

/** A variable that must be set: `schema` says what it must hold, and its message for undefined what to set. */
export function requiredVariable<T extends z.ZodType>(schema: T) {
  return z.preprocess(blankAsUnset, schema);
}

/** A variable that may be left unset (undefined). */
export function optionalVariable<T extends z.ZodType>(schema: T) {
  return z.preprocess(blankAsUnset, schema.optional());
}

/** A variable holding JSON: text (a secret, `--var`) or a value (a [vars] table in wrangler.toml). */
export function jsonVariable<T extends z.ZodType>(schema: T) {
  return z
    .unknown()
    .transform((raw, ctx) => {
      if (typeof raw !== "string") return raw;
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        // Not JSON.parse's own message: it quotes the text, which may be a secret.
        ctx.addIssue({ code: "custom", message: "is not valid JSON" });
        return z.NEVER;
      }
    })
    .pipe(schema);
}
