import { DurableObject } from "cloudflare:workers";
import { workerConfig } from "../config/worker-config";
import { openHttpClient } from "../db/http-client";
import type { SqlQueryable } from "../db/sql-client";
import { withTimeout } from "../db/with-timeout";
import { logServiceFault, toFailure } from "../events/failure";
import { decodeCheckpoint } from "../feed/checkpoint";
import { feedActor } from "../feed/feed-actor";
import { readFeed } from "../feed/feed-statements";
import { log } from "../log";
import { webhookKey } from "../webhooks/webhook-secrets";
import { type Delivery, deliver, RETRY_BASE_MS, retryDelay, webhookIdOf } from "./delivery";
import {
  claimBatch,
  claimRedrive,
  getDeadLetter,
  getSubscription,
  recordDeadLetter,
  recordDelivered,
  recordFailure,
  type Subscription,
} from "./subscription-store";
import { refuseTarget } from "./target-url";

const NAME_KEY = "name";
/** One alarm delivers for at most this long, then hands over to the next alarm. */
const WORK_PER_ALARM_MS = 10_000;
/** After a database failure, the next alarm comes this much later. */
const DATABASE_RETRY_MS = 5 * RETRY_BASE_MS;

/** The delivery in flight and the subscription as it is while it is. */
interface InFlight {
  subscription: Subscription;
  delivery: Delivery;
}

/**
 * One subscription's delivery, driven by its Durable Object alarm: one delivery at a time,
 * in feed order (re-driven dead letters first), each retried with backoff until the
 * receiver answers 2xx or the dead-letter time has passed. Everything it knows is in the
 * subscription's row (subscription-store.ts), so any instance carries on where the last
 * stopped; the object itself remembers only which subscription it is. When it has
 * caught up it asks the feed actor to wake it at the next commit, and polls as well.
 */
export class SubscriptionActor extends DurableObject<Env> {
  private db: SqlQueryable | undefined;
  private woken = false;
  private delivering = false;

  /** Deliver now: the subscription changed, was resumed or replayed, or the feed has new events. */
  async wake(name: string): Promise<void> {
    if (this.delivering) this.woken = true;
    await this.ctx.storage.put(NAME_KEY, name);
    await this.ctx.storage.setAlarm(Date.now());
  }

  override async alarm(): Promise<void> {
    const name = await this.ctx.storage.get<string>(NAME_KEY);
    if (name === undefined) return;
    this.delivering = true;
    this.woken = false;
    let next: number | undefined;
    try {
      next = await this.deliverDue(name);
    } catch (error) {
      logServiceFault(toFailure(error), error, { operation: `subscription ${name}` });
      next = Date.now() + DATABASE_RETRY_MS;
    } finally {
      this.delivering = false;
    }
    // A wake that came while this ran may have been overwritten by the alarm set here.
    if (this.woken && next !== undefined) next = Date.now();
    if (next !== undefined) await this.ctx.storage.setAlarm(next);
  }

  /** Delivers what is due; the time of the next alarm, or undefined when none is needed (deleted, paused). */
  private async deliverDue(name: string): Promise<number | undefined> {
    const config = workerConfig(this.env);
    const db = this.database();
    const limit = <T>(work: Promise<T>) => withTimeout(work, config.databaseTimeoutMs);
    const started = Date.now();
    let subscription = await limit(getSubscription(db, name));
    for (;;) {
      if (subscription === undefined || subscription.paused) return undefined;
      const due = subscription.nextAttemptAt?.getTime() ?? 0;
      if (due > Date.now()) return due;
      let inFlight = await limit(this.inFlight(db, subscription));
      if (inFlight === undefined) {
        // Caught up: ask the feed actor for a wake-up at the next commit, then look once
        // more, so that a commit between the first look and the asking is not missed.
        await feedActor(this.env).listen(name);
        inFlight = await limit(this.inFlight(db, subscription));
        if (inFlight === undefined) return Date.now() + config.feedPollIntervalMs;
      }
      if (inFlight === "changed") {
        subscription = await limit(getSubscription(db, name));
        continue;
      }
      const { subscription: current, delivery } = inFlight;
      const refused = refuseTarget(current.url, config.subscriptions.allowPrivateTargets);
      const key = webhookKey(current.secret);
      const outcome =
        refused !== undefined || key === undefined
          ? {
              ok: false as const,
              error: `not delivered: ${refused ?? "the secret is malformed"}`,
              retryAfterMs: undefined,
            }
          : await deliver(current.url, key, name, delivery, config.subscriptions.timeoutMs);
      if (outcome.ok) {
        subscription =
          (await limit(recordDelivered(db, current))) ?? (await limit(getSubscription(db, name)));
      } else if (
        Date.now() - (current.pendingSince?.getTime() ?? Date.now()) >=
        config.subscriptions.deadLetterAfterMs
      ) {
        await limit(recordDeadLetter(db, current, delivery, outcome.error));
        log({
          event: "subscription_dead_letter",
          level: "warn",
          subscription: name,
          webhook_id: delivery.webhookId,
          attempts: current.attempts + 1,
          cause: outcome.error,
        });
        subscription = await limit(getSubscription(db, name));
      } else {
        const at = new Date(Date.now() + retryDelay(current.attempts + 1, outcome.retryAfterMs));
        await limit(recordFailure(db, current, outcome.error, at));
        return at.getTime();
      }
      if (Date.now() - started > WORK_PER_ALARM_MS) return Date.now();
    }
  }

  /**
   * The delivery in flight: a dead letter being re-driven, the batch already claimed
   * (read again exactly: the feed up to its end never changes), a dead letter asked to be
   * re-driven, or the next batch of the feed, claimed here. Undefined when there is
   * nothing to deliver; "changed" when the subscription changed meanwhile.
   */
  private async inFlight(
    db: SqlQueryable,
    subscription: Subscription,
  ): Promise<InFlight | "changed" | undefined> {
    const filters = { streamTypes: subscription.streamTypes, eventTypes: subscription.eventTypes };
    if (subscription.pendingDeadLetter !== undefined) {
      const letter = await getDeadLetter(db, subscription.name, subscription.pendingDeadLetter);
      if (letter !== undefined) return { subscription, delivery: letter };
      await recordDelivered(db, subscription);
      return "changed";
    }
    if (subscription.pendingThrough !== undefined) {
      const events = await readFeed(db, {
        after: subscription.checkpoint,
        through: subscription.pendingThrough,
        limit: subscription.batchSize,
        ...filters,
      });
      if (events.length > 0)
        return { subscription, delivery: { webhookId: await webhookIdOf(events), events } };
      await recordDelivered(db, subscription);
      return "changed";
    }
    const letter = subscription.redriveWaiting ? await claimRedrive(db, subscription) : undefined;
    if (letter !== undefined) {
      return {
        subscription: {
          ...subscription,
          pendingDeadLetter: letter.id,
          pendingSince: new Date(),
          attempts: 0,
        },
        delivery: letter,
      };
    }
    const events = await readFeed(db, {
      after: subscription.checkpoint,
      limit: subscription.batchSize,
      ...filters,
    });
    const through = decodeCheckpoint(events.at(-1)?.checkpoint ?? "");
    if (through === undefined) return undefined;
    if (!(await claimBatch(db, subscription, through))) return "changed";
    return {
      subscription: { ...subscription, pendingThrough: through, pendingSince: new Date(), attempts: 0 },
      delivery: { webhookId: await webhookIdOf(events), events },
    };
  }

  /** Over HTTP, like the stream actors (decision 24): a subscription between deliveries holds nothing. */
  private database(): SqlQueryable {
    const config = workerConfig(this.env);
    this.db ??= openHttpClient(config.database, { timeoutMs: config.databaseTimeoutMs });
    return this.db;
  }
}

/** The actor of the subscription `name`. */
export function subscriptionActor(env: Env, name: string): DurableObjectStub<SubscriptionActor> {
  return env.SUBSCRIPTION_ACTOR.get(env.SUBSCRIPTION_ACTOR.idFromName(name));
}
