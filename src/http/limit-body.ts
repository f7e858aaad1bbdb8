import { bodyLimit } from "hono/body-limit";
import { MAX_BODY_BYTES } from "./limits";
import { problem } from "./problem";

/** Refuses a body over MAX_BODY_BYTES with 413, counting the bytes as they arrive (no trust in Content-Length). */
export const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) =>
    problem(c, {
      status: 413,
      code: "too_large",
      title: "Request too large",
      detail: `The body is larger than ${MAX_BODY_BYTES} bytes; split the events over several requests.`,
    }),
});
