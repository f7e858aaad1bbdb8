import { log } from "../log";
import { applyEvent } from "../state/apply-event";
import { InvalidEventSequence } from "../state/invalid-event-sequence";
import { emptyWorkflowState, STATE_SCHEMA_VERSION, WorkflowState } from "../state/workflow-state";
import { CodedError, type Failure } from "./failure";
import type { EventStore, LoadedStream, StoredSnapshot, StreamHead } from "./store";
import { EventStoreError, StreamNotFound, VersionNotFound } from "./store-errors";
import { describeIssues } from "./wire";

/** Events read per page while replaying a tail. */
const REPLAY_PAGE_SIZE = 500;

/** Why replay failed: the log or a snapshot holds what this code cannot serve. */
export abstract class ReplayError extends CodedError {}

/** A store error met during replay; it is answered as that error. */
export class ReplayStoreError extends ReplayError {
  constructor(override readonly cause: EventStoreError) {
    super(cause.code, cause.message, cause.details, { cause });
  }

  override toFailure(): Failure {
    return this.cause.toFailure();
  }
}

/** The log holds a sequence the state rules refuse: it was written by something other than this store. */
export class ReplayInvalidSequence extends ReplayError {
  constructor(
    readonly streamId: string,
    readonly version: number,
    override readonly cause: InvalidEventSequence,
  ) {
    super(
      "corrupt_data",
      `Stream ${streamId} cannot be replayed: event ${version} is invalid. ${cause.message} ` +
        "The stream cannot be served until its log is repaired.",
      { version },
      { cause },
    );
  }
}

/** A snapshot that could not be used. Rebuilding skips it and reports it with this. */
export class SnapshotCorrupted extends ReplayError {
  constructor(
    readonly streamId: string,
    readonly version: number,
    readonly reason: string,
  ) {
    super("corrupt_data", `Snapshot of stream ${streamId} at version ${version} was skipped: ${reason}`);
  }
}

export interface RebuiltState {
  state: WorkflowState;
  /** The snapshot the rebuild started from, or null for a full replay. */
  snapshotVersion: number | null;
  /** Events applied on top of the snapshot. */
  replayedEvents: number;
  skippedSnapshots: SnapshotCorrupted[];
}

export interface StateRebuilderOptions {
  /** Told about every snapshot that was skipped; by default each is logged, one JSON line. */
  onSnapshotSkipped?: (report: SnapshotCorrupted) => void;
}

/** The reads a rebuild needs. */
export type ReplaySource = Pick<EventStore, "getStreamHead" | "getLatestSnapshot" | "loadEvents">;

/** Rebuilds a stream's state from its newest usable snapshot plus the events after it. */
export class StateRebuilder {
  constructor(
    private readonly store: ReplaySource,
    private readonly options: StateRebuilderOptions = {},
  ) {}

  /** The state at the stream's head, or at `atVersion` (time travel). */
  async rebuildState(streamId: string, atVersion?: number): Promise<RebuiltState> {
    return this.replaying(async () => {
      const head = await this.store.getStreamHead(streamId);
      if (head === null || head.version === 0) throw new StreamNotFound(streamId);
      return this.rebuild(head, atVersion);
    });
  }

  /** The same, for a caller that has just read the stream's head (saves reading it again). */
  async rebuildFromHead(head: StreamHead, atVersion?: number): Promise<RebuiltState> {
    return this.replaying(() => this.rebuild(head, atVersion));
  }

  /**
   * The same from a stream loaded in one read (loadStream, with the same `atVersion`):
   * nothing more is read unless its snapshot cannot be used or its tail goes on.
   */
  async rebuildLoaded(loaded: LoadedStream, atVersion?: number): Promise<RebuiltState> {
    return this.replaying(() => this.rebuild(loaded.head, atVersion, loaded));
  }

  private async replaying(work: () => Promise<RebuiltState>): Promise<RebuiltState> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof EventStoreError) throw new ReplayStoreError(error);
      throw error;
    }
  }

  private async rebuild(
    head: StreamHead,
    atVersion: number | undefined,
    loaded?: LoadedStream,
  ): Promise<RebuiltState> {
    const streamId = head.stream_id;
    if (head.version === 0) throw new StreamNotFound(streamId);
    const target = atVersion ?? head.version;
    if (!Number.isSafeInteger(target) || target < 0 || target > head.version) {
      throw new VersionNotFound(streamId, target, head.version);
    }
    const skippedSnapshots: SnapshotCorrupted[] = [];
    // What was loaded for another version than `target` is used only as far as it goes.
    const loadedSnapshot =
      loaded === undefined || (loaded.snapshot !== null && loaded.snapshot.version > target)
        ? undefined
        : loaded.snapshot;
    const start = await this.usableSnapshot(streamId, target, skippedSnapshots, loadedSnapshot);
    let state = start ?? emptyWorkflowState();
    let replayedEvents = 0;
    // The loaded tail follows the loaded snapshot: it is the first page only if that snapshot was used.
    let loadedPage = loaded?.events.filter((stored) => stored.version <= target);
    while (state.version < target) {
      const page =
        loadedPage !== undefined && loadedPage[0]?.version === state.version + 1
          ? loadedPage
          : await this.store.loadEvents(streamId, {
              fromVersion: state.version + 1,
              limit: Math.min(REPLAY_PAGE_SIZE, target - state.version),
            });
      loadedPage = undefined;
      if (page.length === 0) break;
      for (const stored of page) {
        if (stored.version !== state.version + 1) {
          throw new ReplayInvalidSequence(
            streamId,
            stored.version,
            new InvalidEventSequence(
              `expected event ${state.version + 1} next but the log holds ${stored.version}: the stream has a gap.`,
              stored.event.type,
              null,
              state.status,
              state.version,
            ),
          );
        }
        try {
          state = applyEvent(state, stored.event);
        } catch (error) {
          if (error instanceof InvalidEventSequence)
            throw new ReplayInvalidSequence(streamId, stored.version, error);
          throw error;
        }
        replayedEvents++;
      }
    }
    if (state.version !== target) throw new VersionNotFound(streamId, target, state.version);
    return { state, snapshotVersion: start?.version ?? null, replayedEvents, skippedSnapshots };
  }

  /** The newest usable snapshot at or below `atOrBelow`, trying `loaded` (already read, maybe null) first. */
  private async usableSnapshot(
    streamId: string,
    atOrBelow: number,
    skipped: SnapshotCorrupted[],
    loaded?: StoredSnapshot | null,
  ): Promise<WorkflowState | null> {
    let candidate =
      loaded !== undefined
        ? loaded
        : atOrBelow >= 1
          ? await this.store.getLatestSnapshot(streamId, atOrBelow)
          : null;
    while (candidate !== null) {
      const problem = checkSnapshot(candidate);
      if (typeof problem !== "string") return problem;
      const report = new SnapshotCorrupted(streamId, candidate.version, problem);
      skipped.push(report);
      (this.options.onSnapshotSkipped ?? logSkippedSnapshot)(report);
      candidate =
        candidate.version > 1 ? await this.store.getLatestSnapshot(streamId, candidate.version - 1) : null;
    }
    return null;
  }
}

/** A skipped snapshot costs every rebuild of its stream a longer replay: an operator must hear of it. */
function logSkippedSnapshot(report: SnapshotCorrupted): void {
  log({
    event: "snapshot_skipped",
    level: "warn",
    stream_id: report.streamId,
    code: report.code,
    version: report.version,
    cause: report.reason,
  });
}

/** The snapshot's state, or why it cannot be trusted. */
function checkSnapshot(snapshot: StoredSnapshot): WorkflowState | string {
  if (snapshot.schema_version !== STATE_SCHEMA_VERSION) {
    return `it has state schema version ${snapshot.schema_version}, this code reads ${STATE_SCHEMA_VERSION}.`;
  }
  const parsed = WorkflowState.safeParse(snapshot.state);
  if (!parsed.success) return `its state does not match the schema (${describeIssues(parsed.error)}).`;
  if (parsed.data.version !== snapshot.version) {
    return `its state is at version ${parsed.data.version} but the row says ${snapshot.version}.`;
  }
  return parsed.data;
}
