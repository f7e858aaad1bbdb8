import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app-env";
import { MAX_BODY_BYTES } from "./limits";
import { problem } from "./problem";

// The request body, read before anything else looks at it: at most MAX_BODY_BYTES
// (counted as the bytes arrive, whatever Content-Length says: 413 beyond) and within
// BODY_TIMEOUT_MS (408 for a body that trickles in or stops, issue 10, row 3). What the
// route reads afterwards is the buffered copy.

/** Reads one chunk, or "timeout" once `deadline` (epoch ms) has passed. */
async function readBefore(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  deadline: number,
): Promise<ReadableStreamReadResult<Uint8Array> | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([reader.read(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Needs `config` (set by requireScope, or the webhook route's own check). */
export const readBody = createMiddleware<AppEnv>(async (c, next) => {
  const stream = c.req.raw.body;
  if (stream === null) return next();
  const { bodyTimeoutMs } = c.get("config");
  const deadline = Date.now() + bodyTimeoutMs;
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const read = await readBefore(reader, deadline);
    if (read === "timeout") {
      reader.cancel().catch(() => undefined);
      return problem(c, {
        status: 408,
        code: "body_timeout",
        title: "Request body too slow",
        detail: `The body did not arrive within ${bodyTimeoutMs / 1000} seconds; send it whole and at once (at most ${MAX_BODY_BYTES} bytes).`,
        headers: { connection: "close" },
      });
    }
    if (read.done) break;
    size += read.value.byteLength;
    if (size > MAX_BODY_BYTES) {
      reader.cancel().catch(() => undefined);
      return problem(c, {
        status: 413,
        code: "too_large",
        title: "Request too large",
        detail: `The body is larger than ${MAX_BODY_BYTES} bytes; split the events over several requests.`,
      });
    }
    chunks.push(read.value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  c.req.raw = new Request(c.req.raw, { body });
  await next();
});
