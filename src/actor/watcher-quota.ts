import { DurableObject } from "cloudflare:workers";
import { z } from "zod";

// The cap on one token's live watchers across every stream (issue 10, row 3): one
// Durable Object per token holds a lease per watcher it has open. A stream actor takes a
// lease before it accepts a watcher and gives it back when the socket closes. A lease
// whose release was lost (an actor evicted or redeployed with sockets open) is found
// when the cap is reached: the quota asks each stream that holds leases which of its
// watchers are still open, and drops the others.

/** How a watcher's lease is named: its token, and an id of its own. */
export interface WatcherLease {
  tokenId: string;
  watcherId: string;
}

/** A lease younger than this is never dropped by a check: its socket may not be accepted yet. */
const LEASE_GRACE_MS = 30_000;

const StoredLease = z.object({ streamId: z.string(), at: z.number() });
type StoredLease = z.infer<typeof StoredLease>;
const LEASE_PREFIX = "lease:";

/** What a stream actor answers when asked which of its watchers are open. */
export interface LeaseHolder {
  watcherLeases(): Promise<string[]>;
}

export class WatcherQuota extends DurableObject<Env> {
  private leases: Map<string, StoredLease> | undefined;

  /** Takes a lease for `watcherId` on `streamId`, unless the token already holds `cap`. */
  async acquire(
    watcherId: string,
    streamId: string,
    cap: number,
  ): Promise<{ ok: true } | { ok: false; held: number }> {
    const leases = await this.load();
    if (leases.size >= cap) await this.dropClosed(leases);
    if (leases.size >= cap) return { ok: false, held: leases.size };
    const lease = { streamId, at: Date.now() };
    leases.set(watcherId, lease);
    await this.ctx.storage.put(LEASE_PREFIX + watcherId, lease);
    return { ok: true };
  }

  /** Gives a lease back (nothing happens for one already given back). */
  async release(watcherId: string): Promise<void> {
    const leases = await this.load();
    if (!leases.delete(watcherId)) return;
    await this.ctx.storage.delete(LEASE_PREFIX + watcherId);
  }

  /** Leases held now (for tests and operators). */
  async held(): Promise<number> {
    return (await this.load()).size;
  }

  private async load(): Promise<Map<string, StoredLease>> {
    if (this.leases) return this.leases;
    const stored = await this.ctx.storage.list({ prefix: LEASE_PREFIX });
    const leases = new Map<string, StoredLease>();
    for (const [key, value] of stored) {
      const parsed = StoredLease.safeParse(value);
      if (parsed.success) leases.set(key.slice(LEASE_PREFIX.length), parsed.data);
    }
    this.leases = leases;
    return leases;
  }

  /** Drops the leases (older than the grace period) whose stream no longer has their watcher open. */
  private async dropClosed(leases: Map<string, StoredLease>): Promise<void> {
    const now = Date.now();
    const byStream = new Map<string, string[]>();
    for (const [watcherId, lease] of leases) {
      if (now - lease.at < LEASE_GRACE_MS) continue;
      byStream.set(lease.streamId, [...(byStream.get(lease.streamId) ?? []), watcherId]);
    }
    await Promise.all(
      [...byStream].map(async ([streamId, watcherIds]) => {
        const namespace = this.env.STREAM_ACTOR;
        const holder = namespace.get(namespace.idFromName(streamId)) as unknown as LeaseHolder;
        let open: Set<string>;
        try {
          open = new Set(await holder.watcherLeases());
        } catch {
          return; // The stream did not answer: keep its leases, ask again next time.
        }
        for (const watcherId of watcherIds) {
          if (open.has(watcherId)) continue;
          leases.delete(watcherId);
          await this.ctx.storage.delete(LEASE_PREFIX + watcherId);
        }
      }),
    );
  }
}
