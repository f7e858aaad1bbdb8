import { afterEach, describe, expect, it, vi } from "vitest";
import { DatabaseTimeout } from "../../src/db/with-timeout";
import { type Failure, isServiceFault, logServiceFault, toFailure } from "../../src/events/failure";
import { ReplayInvalidSequence, ReplayStoreError, SnapshotCorrupted } from "../../src/events/replay";
import {
  ConcurrencyConflict,
  CorruptRow,
  DatabaseError,
  IdempotencyConflict,
  InvalidAppend,
  StreamNotFound,
  StreamTypeMismatch,
  VersionNotFound,
} from "../../src/events/store-errors";
import { InvalidEventSequence } from "../../src/state/invalid-event-sequence";

// Every error says how it is answered: its code (one set, as clients see them), its
// sentence and its details. Anything else thrown is taken as the database failing.

const STREAM = "4a7d1ed4-1b53-4f5c-9b7e-2f0f4c8f3b10";
const refused = (state: "running" | "completed" = "running") =>
  new InvalidEventSequence("step_completed refused: no such step.", "step_completed", "review", state, 3);

describe("each error's failure", () => {
  const cases: Array<[string, unknown, Omit<Failure, "ok" | "message">]> = [
    [
      "a version conflict, with both versions",
      new ConcurrencyConflict(STREAM, 4, 6),
      { code: "concurrency_conflict", details: { expected: 4, actual: 6 } },
    ],
    ["a stream with no events", new StreamNotFound(STREAM), { code: "stream_not_found" }],
    [
      "a version past the head, with the head",
      new VersionNotFound(STREAM, 9, 7),
      { code: "version_not_found", details: { requested: 9, version: 7 } },
    ],
    [
      "another stream type, naming the stream's",
      new StreamTypeMismatch(STREAM, "order", "workflow"),
      { code: "stream_type_mismatch", details: { stream_type: "workflow" } },
    ],
    [
      "reused event ids, listing them",
      new IdempotencyConflict(STREAM, ["a", "b"]),
      { code: "idempotency_conflict", details: { event_ids: ["a", "b"] } },
    ],
    [
      "a malformed append",
      new InvalidAppend("An append needs at least one event."),
      { code: "invalid_append" },
    ],
    [
      "a corrupt row",
      new CorruptRow("A workflow_events row has an unexpected shape"),
      { code: "corrupt_data" },
    ],
    [
      "a refused event, naming event, step, state and version",
      refused(),
      {
        code: "invalid_event_sequence",
        details: { event_type: "step_completed", step_id: "review", status: "running", version: 3 },
      },
    ],
    [
      "a replay that met a store error, answered as that error",
      new ReplayStoreError(new VersionNotFound(STREAM, 9, 7)),
      { code: "version_not_found", details: { requested: 9, version: 7 } },
    ],
    [
      "a log holding an invalid sequence, with the version",
      new ReplayInvalidSequence(STREAM, 4, refused()),
      { code: "corrupt_data", details: { version: 4 } },
    ],
    [
      "a skipped snapshot",
      new SnapshotCorrupted(STREAM, 50, "its state is at version 49"),
      { code: "corrupt_data" },
    ],
  ];
  for (const [name, error, expected] of cases) {
    it(name, () => {
      const failure = toFailure(error);
      expect(failure).toEqual({ ok: false, message: failure.message, ...expected });
      expect(failure.message).not.toBe("");
    });
  }

  it("is named after its class", () => {
    expect(new VersionNotFound(STREAM, 9, 7).name).toBe("VersionNotFound");
    expect(new ReplayStoreError(new StreamNotFound(STREAM)).name).toBe("ReplayStoreError");
    expect(new DatabaseTimeout(5).name).toBe("DatabaseTimeout");
    expect(refused().name).toBe("InvalidEventSequence");
  });

  it("keeps the error's own sentence, and tells what a corrupt log means for the stream", () => {
    const conflict = new ConcurrencyConflict(STREAM, 4, 6);
    expect(toFailure(conflict).message).toBe(conflict.message);
    const corrupt = new ReplayInvalidSequence(STREAM, 4, refused());
    expect(toFailure(corrupt).message).toBe(
      `Stream ${STREAM} cannot be replayed: event 4 is invalid. step_completed refused: no such step. ` +
        "The stream cannot be served until its log is repaired.",
    );
  });

  it("answers a database failure, a timeout and anything unknown as unavailable, asking for a retry with the same ids", () => {
    const errors = [
      new DatabaseError('The database failed to append: role "appuser" does not exist', {
        cause: new Error("reset"),
      }),
      new DatabaseTimeout(250),
      new Error("socket hang up"),
      "a thrown string",
    ];
    for (const error of errors) {
      // One fixed sentence: what the driver said is for the log, never for the client (issue 10, row 5).
      expect(toFailure(error)).toEqual({
        ok: false,
        code: "unavailable",
        message: "The database is unavailable; retry the request, with the same event ids for an append.",
      });
    }
  });
});

describe("service faults", () => {
  it("are the failures that are not the request's fault: unavailable and corrupt data", () => {
    expect(isServiceFault(toFailure(new Error("down")))).toBe(true);
    expect(isServiceFault(toFailure(new CorruptRow("bad row")))).toBe(true);
    expect(isServiceFault(toFailure(new ConcurrencyConflict(STREAM, 1, 2)))).toBe(false);
    expect(isServiceFault(toFailure(refused("completed")))).toBe(false);
  });
});

describe("logging a failure", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("writes one JSON line for a service fault: where, the code and the cause", () => {
    const lines = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const cause = new DatabaseError("The database failed to append: connection reset", { cause: "reset" });
    const failure = toFailure(cause);
    expect(logServiceFault(failure, cause, { stream_id: STREAM, operation: "append", requests: 3 })).toBe(
      failure,
    );
    expect(lines).toHaveBeenCalledTimes(1);
    const line = JSON.parse(String(lines.mock.calls[0]?.[0]));
    expect(line).toEqual({
      time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      event: "request_failed",
      level: "error",
      stream_id: STREAM,
      operation: "append",
      requests: 3,
      code: "unavailable",
      error: "DatabaseError",
      cause: "The database failed to append: connection reset",
    });
  });

  it("writes nothing for a failure that is the request's", () => {
    const lines = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const conflict = new ConcurrencyConflict(STREAM, 1, 2);
    logServiceFault(toFailure(conflict), conflict, { stream_id: STREAM, operation: "append" });
    expect(lines).not.toHaveBeenCalled();
    expect(warnings).not.toHaveBeenCalled();
  });
});
