import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app-env";
import { MAX_BODY_BYTES } from "./limits";
import { problem } from "./problem";

// The request body, read before anything else looks at it: at most MAX_BODY_BYTES
// (counted as the bytes arrive, or checked once read when a Content-Length within the
// limit let it be read in one call: 413 beyond) and within
// BODY_TIMEOUT_MS (408 for a body that trickles in or stops, issue 10, row 3). What the
// route reads afterwards (c.req.json(), c.req.arrayBuffer()) is the buffered copy, left
// in hono's body cache: rebuilding the Request around it cost more than anything else
// this middleware does (docs/cpu-profile.md), and one timer covers the whole body.

/** Resolves "timeout" once `ms` have passed, until cancelled. */
function deadline(ms: number): { expired: Promise<"timeout">; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  return { expired, cancel: () => clearTimeout(timer) };
}

/** The whole body, "timeout", or "too_large". */
async function readWithin(
  body: ReadableStream<Uint8Array>,
  expired: Promise<"timeout">,
): Promise<Uint8Array | "timeout" | "too_large"> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const read = await Promise.race([reader.read(), expired]);
    if (read === "timeout") {
      reader.cancel().catch(() => undefined);
      return "timeout";
    }
    if (read.done) break;
    size += read.value.byteLength;
    if (size > MAX_BODY_BYTES) {
      reader.cancel().catch(() => undefined);
      return "too_large";
    }
    chunks.push(read.value);
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const whole = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    whole.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return whole;
}

function tooLarge(c: Context<AppEnv>): Response {
  return problem(c, {
    status: 413,
    code: "too_large",
    title: "Request too large",
    detail: `The body is larger than ${MAX_BODY_BYTES} bytes; split the events over several requests.`,
  });
}

/** Needs `config` (set by requireScope, or the webhook route's own check). */
export const readBody = createMiddleware<AppEnv>(async (c, next) => {
  const stream = c.req.raw.body;
  if (stream === null) return next();
  const { bodyTimeoutMs } = c.get("config");
  const timer = deadline(bodyTimeoutMs);
  // With a Content-Length within the limit the runtime delivers exactly that many bytes,
  // so the body is taken in one read. Otherwise chunk by chunk, counting: a body over the
  // limit is read up to it and then refused, not refused on its header alone, because a
  // client still sending a large body when the answer and the close come sees a reset
  // connection instead of the 413 (seen in the bad-input corpus).
  const declared = Number(c.req.header("content-length") ?? Number.NaN);
  const body = await (declared >= 0 && declared <= MAX_BODY_BYTES
    ? Promise.race([c.req.raw.arrayBuffer().then((buffer) => new Uint8Array(buffer)), timer.expired])
    : readWithin(stream, timer.expired)
  ).finally(timer.cancel);
  if (body === "too_large" || (body !== "timeout" && body.byteLength > MAX_BODY_BYTES)) return tooLarge(c);
  if (body === "timeout") {
    return problem(c, {
      status: 408,
      code: "body_timeout",
      title: "Request body too slow",
      detail: `The body did not arrive within ${bodyTimeoutMs / 1000} seconds; send it whole and at once (at most ${MAX_BODY_BYTES} bytes).`,
      headers: { connection: "close" },
    });
  }
  const whole = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
  const bytes = whole ? body.buffer : body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
  // hono keeps promises in its body cache (request.js, #cachedBody), whatever its types say.
  const cache = c.req.bodyCache as unknown as Record<"arrayBuffer" | "text", Promise<ArrayBuffer | string>>;
  cache.arrayBuffer = Promise.resolve(bytes as ArrayBuffer);
  cache.text = Promise.resolve(new TextDecoder().decode(body));
  await next();
});
