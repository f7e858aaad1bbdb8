import type { StoredEventRef } from "../events/store";

/** How many caller-chosen ids an actor remembers; about 100 bytes each. */
export const RECENT_EVENT_IDS = 4096;

/**
 * Where the caller-chosen event ids this actor has written or seen stored are, the
 * most recent `capacity` of them. A stored event never moves, so what is remembered
 * stays true whatever happens to the cache: a retry of a recent append is answered
 * from here without asking the database, and an id not found here is probed by the
 * append statement itself (the unique event_id index is the authority).
 */
export class RecentEventIds {
  private readonly refs = new Map<string, StoredEventRef>();

  constructor(private readonly capacity = RECENT_EVENT_IDS) {}

  remember(refs: Iterable<StoredEventRef>): void {
    for (const ref of refs) {
      this.refs.delete(ref.event_id);
      this.refs.set(ref.event_id, ref);
    }
    // A Map iterates in insertion order: the first keys are the oldest.
    for (const oldest of this.refs.keys()) {
      if (this.refs.size <= this.capacity) break;
      this.refs.delete(oldest);
    }
  }

  /** Those of `eventIds` remembered, with where each is stored. */
  lookup(eventIds: Iterable<string>): Map<string, StoredEventRef> {
    const found = new Map<string, StoredEventRef>();
    for (const id of eventIds) {
      const ref = this.refs.get(id);
      if (ref !== undefined) found.set(id, ref);
    }
    return found;
  }
}
