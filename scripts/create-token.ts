import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { AccessTokenEntry } from "../src/auth/access-tokens";
import { describeIssues } from "../src/events/wire";

// `npm run token -- --id ci --scopes read,append [--streams <uuid,...>] [--stream-types t1,t2]`
// Prints a new token (shown once, keep it) and the AUTH_TOKENS entry that admits it.
const { values } = parseArgs({
  options: {
    id: { type: "string" },
    scopes: { type: "string", default: "read" },
    streams: { type: "string" },
    "stream-types": { type: "string" },
  },
});
const list = (text: string | undefined) =>
  text
    ?.split(",")
    .map((item) => item.trim())
    .filter(Boolean);
const token = `gst_${randomBytes(32).toString("base64url")}`;
const entry = AccessTokenEntry.safeParse({
  id: values.id ?? `token-${Date.now()}`,
  sha256: createHash("sha256").update(token).digest("hex"),
  scopes: list(values.scopes),
  ...(values.streams ? { streams: list(values.streams) } : {}),
  ...(values["stream-types"] ? { stream_types: list(values["stream-types"]) } : {}),
});
if (!entry.success) {
  console.error(`Cannot make that token: ${describeIssues(entry.error)}`);
  process.exit(2);
}
console.log(`token (shown once; give it to the caller):\n  ${token}\n`);
console.log(`AUTH_TOKENS entry (add it to the JSON list in the secret):\n  ${JSON.stringify(entry.data)}`);
