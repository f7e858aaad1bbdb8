import { parseArgs } from "node:util";
import { makeToken } from "./lib/tokens";

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
const made = makeToken({
  id: values.id,
  scopes: values.scopes,
  streams: values.streams,
  streamTypes: values["stream-types"],
});
if (!made.ok) {
  console.error(made.error);
  process.exit(2);
}
console.log(`token (shown once; give it to the caller):\n  ${made.token}\n`);
console.log(`AUTH_TOKENS entry (add it to the JSON list in the secret):\n  ${JSON.stringify(made.entry)}`);
