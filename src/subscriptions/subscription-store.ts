import { z } from "zod";
import { CorruptRow } from "../events/store-errors";
import { describeIssues } from "../events/wire";
import type { FeedCheckpoint } from "../feed/checkpoint";
import { FeedEvent } from "../feed/feed-event";
import { type FeedDatabase, runStatement } from "../feed/feed-statements";

// The subscriptions' statements: what the routes change and the actors deliver by. Every
// change of a delivery's outcome names the generation it was planned in, so a replay or
// a change of filters that came in meanwhile wins.

/** What PUT /subscriptions/:name sets. */
export interface SubscriptionSettings {
  name: string;
  url: string;
  /** undefined: every event type. */
  eventTypes: readonly string[] | undefined;
  /** undefined: every stream type. */
  streamTypes: readonly string[] | undefined;
  batchSize: number;
}

export interface Subscription extends SubscriptionSettings {
  secret: string;
  paused: boolean;
  generation: number;
  checkpoint: FeedCheckpoint;
  /** The batch in flight: the feed after the checkpoint up to here. */
  pendingThrough: FeedCheckpoint | undefined;
  /** Or the dead letter in flight (a re-drive). */
  pendingDeadLetter: number | undefined;
  pendingSince: Date | undefined;
  attempts: number;
  nextAttemptAt: Date | undefined;
  lastDeliveryAt: Date | undefined;
  lastError: string | undefined;
  lastErrorAt: Date | undefined;
  createdAt: Date;
  /** Whether some dead letter is asked to be re-driven. */
  redriveWaiting: boolean;
}

export interface DeadLetter {
  id: number;
  webhookId: string;
  events: FeedEvent[];
  firstAttemptAt: Date;
  deadAt: Date;
  attempts: number;
  lastError: string;
  redriveRequested: boolean;
}

const xid8 = z.string().regex(/^\d+$/).transform(BigInt);
const bigint = z.union([z.number(), z.string().regex(/^\d+$/)]).transform(Number);
const time = z.union([z.date(), z.string()]).transform((value) => new Date(value));
const texts = z.array(z.string()).nullable();

const SubscriptionRow = z.object({
  name: z.string(),
  url: z.string(),
  secret: z.string(),
  event_types: texts,
  stream_types: texts,
  batch_size: z.number().int(),
  paused: z.boolean(),
  generation: bigint,
  checkpoint_transaction: xid8,
  checkpoint_position: bigint,
  pending_through_transaction: xid8.nullable(),
  pending_through_position: bigint.nullable(),
  pending_dead_letter: bigint.nullable(),
  pending_since: time.nullable(),
  attempts: z.number().int(),
  next_attempt_at: time.nullable(),
  last_delivery_at: time.nullable(),
  last_error: z.string().nullable(),
  last_error_at: time.nullable(),
  created_at: time,
  redrive_waiting: z.boolean(),
});

const DeadLetterRow = z.object({
  id: bigint,
  webhook_id: z.string(),
  events: z.array(FeedEvent),
  first_attempt_at: time,
  dead_at: time,
  attempts: z.number().int(),
  last_error: z.string(),
  redrive_requested_at: time.nullable(),
});

/** Every column, the xid8 ones as text (the driver has no parser for them). */
const COLUMNS = `name, url, secret, event_types, stream_types, batch_size, paused, generation,
  checkpoint_transaction::text AS checkpoint_transaction, checkpoint_position,
  pending_through_transaction::text AS pending_through_transaction, pending_through_position,
  pending_dead_letter, pending_since, attempts, next_attempt_at, last_delivery_at, last_error,
  last_error_at, created_at,
  EXISTS (SELECT 1 FROM feed_subscription_dead_letters AS letter
           WHERE letter.subscription = name AND letter.redrive_requested_at IS NOT NULL) AS redrive_waiting`;

/** What a delivery in flight leaves behind when it ends, whichever way. */
const CLEAR_IN_FLIGHT = `pending_through_transaction = NULL, pending_through_position = NULL,
  pending_dead_letter = NULL, pending_since = NULL, attempts = 0, next_attempt_at = NULL, updated_at = now()`;

/**
 * Creates the subscription at `created.checkpoint` with `created.secret`, or changes the
 * settings of the one that exists (its secret and checkpoint stay); `created` says which.
 * A change of what is delivered (filters, batch size) ends the delivery in flight: the
 * next one is made under the new settings.
 */
export async function putSubscription(
  db: FeedDatabase,
  settings: SubscriptionSettings,
  created: { secret: string; checkpoint: FeedCheckpoint },
): Promise<{ created: boolean; subscription: Subscription }> {
  const values = [
    settings.name,
    settings.url,
    settings.eventTypes === undefined ? null : [...settings.eventTypes],
    settings.streamTypes === undefined ? null : [...settings.streamTypes],
    settings.batchSize,
  ];
  const inserted = await runStatement(
    db,
    `INSERT INTO feed_subscriptions
       (name, url, event_types, stream_types, batch_size, secret, checkpoint_transaction, checkpoint_position)
     VALUES ($1, $2, $3::text[], $4::text[], $5, $6, $7::xid8, $8)
     ON CONFLICT (name) DO NOTHING
     RETURNING ${COLUMNS}`,
    [...values, created.secret, String(created.checkpoint.transactionId), created.checkpoint.globalPosition],
    "create the subscription",
  );
  if (inserted[0] !== undefined) return { created: true, subscription: toSubscription(inserted[0]) };
  const updated = await runStatement(
    db,
    `UPDATE feed_subscriptions
        SET url = $2, event_types = $3::text[], stream_types = $4::text[], batch_size = $5, updated_at = now()
      WHERE name = $1
        AND event_types IS NOT DISTINCT FROM $3::text[]
        AND stream_types IS NOT DISTINCT FROM $4::text[]
        AND batch_size = $5
      RETURNING ${COLUMNS}`,
    values,
    "change the subscription",
  );
  if (updated[0] !== undefined) return { created: false, subscription: toSubscription(updated[0]) };
  const changed = await runStatement(
    db,
    `UPDATE feed_subscriptions
        SET url = $2, event_types = $3::text[], stream_types = $4::text[], batch_size = $5,
            generation = generation + 1, ${CLEAR_IN_FLIGHT}
      WHERE name = $1
      RETURNING ${COLUMNS}`,
    values,
    "change the subscription",
  );
  // Deleted between the two statements: make it again.
  if (changed[0] === undefined) return putSubscription(db, settings, created);
  return { created: false, subscription: toSubscription(changed[0]) };
}

export async function getSubscription(db: FeedDatabase, name: string): Promise<Subscription | undefined> {
  const rows = await runStatement(
    db,
    `SELECT ${COLUMNS} FROM feed_subscriptions WHERE name = $1`,
    [name],
    "read the subscription",
  );
  return rows[0] === undefined ? undefined : toSubscription(rows[0]);
}

export async function listSubscriptions(db: FeedDatabase): Promise<Subscription[]> {
  const rows = await runStatement(
    db,
    `SELECT ${COLUMNS} FROM feed_subscriptions ORDER BY name`,
    [],
    "list subscriptions",
  );
  return rows.map(toSubscription);
}

export async function deleteSubscription(db: FeedDatabase, name: string): Promise<boolean> {
  const rows = await runStatement(
    db,
    "DELETE FROM feed_subscriptions WHERE name = $1 RETURNING name",
    [name],
    "delete the subscription",
  );
  return rows.length > 0;
}

/** Pauses, or resumes (at once: a resumed subscription does not wait out its backoff). */
export async function setPaused(
  db: FeedDatabase,
  name: string,
  paused: boolean,
): Promise<Subscription | undefined> {
  const rows = await runStatement(
    db,
    `UPDATE feed_subscriptions
        SET paused = $2, next_attempt_at = CASE WHEN $2 THEN next_attempt_at ELSE NULL END, updated_at = now()
      WHERE name = $1
      RETURNING ${COLUMNS}`,
    [name, paused],
    "pause or resume the subscription",
  );
  return rows[0] === undefined ? undefined : toSubscription(rows[0]);
}

/** Moves the checkpoint (back or forward) and drops the delivery in flight: delivery goes on from `checkpoint`. */
export async function replaySubscription(
  db: FeedDatabase,
  name: string,
  checkpoint: FeedCheckpoint,
): Promise<Subscription | undefined> {
  const rows = await runStatement(
    db,
    `UPDATE feed_subscriptions
        SET checkpoint_transaction = $2::xid8, checkpoint_position = $3, generation = generation + 1, ${CLEAR_IN_FLIGHT}
      WHERE name = $1
      RETURNING ${COLUMNS}`,
    [name, String(checkpoint.transactionId), checkpoint.globalPosition],
    "replay the subscription",
  );
  return rows[0] === undefined ? undefined : toSubscription(rows[0]);
}

/** How far the receiver is behind: events not yet answered (counted up to `cap`) and the age of the oldest. */
export async function subscriptionLag(
  db: FeedDatabase,
  subscription: Subscription,
  cap: number,
): Promise<{ events: number; seconds: number; deadLetters: number }> {
  const rows = await runStatement(
    db,
    `SELECT (SELECT count(*) FROM feed_subscription_dead_letters WHERE subscription = $1) AS dead_letters,
            count(*) AS events,
            coalesce(extract(epoch FROM now() - min(occurred_at)), 0)::float8 AS seconds
       FROM (SELECT occurred_at FROM workflow_events
              WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                AND (transaction_id, global_position) > ($2::xid8, $3::bigint)
                AND ($4::text[] IS NULL OR stream_type = ANY ($4::text[]))
                AND ($5::text[] IS NULL OR event_type = ANY ($5::text[]))
              ORDER BY transaction_id, global_position
              LIMIT $6) AS behind`,
    [
      subscription.name,
      String(subscription.checkpoint.transactionId),
      subscription.checkpoint.globalPosition,
      subscription.streamTypes === undefined ? null : [...subscription.streamTypes],
      subscription.eventTypes === undefined ? null : [...subscription.eventTypes],
      cap,
    ],
    "measure the subscription's lag",
  );
  const row = z.object({ dead_letters: bigint, events: bigint, seconds: z.number() }).safeParse(rows[0]);
  if (!row.success) throw new CorruptRow(`The lag row is malformed: ${describeIssues(row.error)}`);
  return {
    events: row.data.events,
    seconds: Math.max(0, Math.round(row.data.seconds)),
    deadLetters: row.data.dead_letters,
  };
}

export async function listDeadLetters(
  db: FeedDatabase,
  name: string,
  afterId: number,
  limit: number,
): Promise<DeadLetter[]> {
  const rows = await runStatement(
    db,
    `SELECT id, webhook_id, events, first_attempt_at, dead_at, attempts, last_error, redrive_requested_at
       FROM feed_subscription_dead_letters
      WHERE subscription = $1 AND id > $2
      ORDER BY id
      LIMIT $3`,
    [name, afterId, limit],
    "list dead letters",
  );
  return rows.map(toDeadLetter);
}

/** Asks for the dead letters (all, or those of `ids`) to be delivered again; how many were found. */
export async function requestRedrive(
  db: FeedDatabase,
  name: string,
  ids: readonly number[] | undefined,
): Promise<number> {
  const rows = await runStatement(
    db,
    `UPDATE feed_subscription_dead_letters SET redrive_requested_at = now()
      WHERE subscription = $1 AND ($2::bigint[] IS NULL OR id = ANY ($2::bigint[]))
      RETURNING id`,
    [name, ids === undefined ? null : [...ids]],
    "re-drive dead letters",
  );
  return rows.length;
}

// The delivering actor's statements.

/**
 * Makes `through` the batch in flight, if nothing is in flight, the generation still holds
 * and the subscription is not paused (a pause that came after the actor read the row).
 */
export async function claimBatch(
  db: FeedDatabase,
  subscription: Subscription,
  through: FeedCheckpoint,
): Promise<boolean> {
  const rows = await runStatement(
    db,
    `UPDATE feed_subscriptions
        SET pending_through_transaction = $3::xid8, pending_through_position = $4, pending_since = now(),
            attempts = 0, next_attempt_at = NULL, updated_at = now()
      WHERE name = $1 AND generation = $2 AND NOT paused
        AND pending_through_transaction IS NULL AND pending_dead_letter IS NULL
      RETURNING name`,
    [subscription.name, subscription.generation, String(through.transactionId), through.globalPosition],
    "claim a batch",
  );
  return rows.length > 0;
}

/** Makes the oldest dead letter asked to be re-driven the delivery in flight (not while paused); undefined when there is none. */
export async function claimRedrive(
  db: FeedDatabase,
  subscription: Subscription,
): Promise<DeadLetter | undefined> {
  const rows = await runStatement(
    db,
    `WITH next AS (
       SELECT id FROM feed_subscription_dead_letters
        WHERE subscription = $1 AND redrive_requested_at IS NOT NULL
        ORDER BY id LIMIT 1
     ), claimed AS (
       UPDATE feed_subscriptions
          SET pending_dead_letter = (SELECT id FROM next), pending_since = now(), attempts = 0,
              next_attempt_at = NULL, updated_at = now()
        WHERE name = $1 AND generation = $2 AND NOT paused AND pending_through_transaction IS NULL
          AND pending_dead_letter IS NULL AND EXISTS (SELECT 1 FROM next)
        RETURNING pending_dead_letter
     )
     SELECT d.id, d.webhook_id, d.events, d.first_attempt_at, d.dead_at, d.attempts, d.last_error, d.redrive_requested_at
       FROM feed_subscription_dead_letters d JOIN claimed c ON d.id = c.pending_dead_letter`,
    [subscription.name, subscription.generation],
    "claim a re-drive",
  );
  return rows[0] === undefined ? undefined : toDeadLetter(rows[0]);
}

export async function getDeadLetter(
  db: FeedDatabase,
  name: string,
  id: number,
): Promise<DeadLetter | undefined> {
  const rows = await runStatement(
    db,
    `SELECT id, webhook_id, events, first_attempt_at, dead_at, attempts, last_error, redrive_requested_at
       FROM feed_subscription_dead_letters WHERE subscription = $1 AND id = $2`,
    [name, id],
    "read a dead letter",
  );
  return rows[0] === undefined ? undefined : toDeadLetter(rows[0]);
}

/**
 * The receiver took the delivery in flight: the checkpoint moves past it (a re-driven
 * dead letter is gone). The subscription as it is now; undefined when it changed meanwhile.
 */
export async function recordDelivered(
  db: FeedDatabase,
  subscription: Subscription,
): Promise<Subscription | undefined> {
  const rows = await runStatement(
    db,
    `WITH redriven AS (
       DELETE FROM feed_subscription_dead_letters
        WHERE id = (SELECT pending_dead_letter FROM feed_subscriptions WHERE name = $1 AND generation = $2)
     )
     UPDATE feed_subscriptions
        SET checkpoint_transaction = coalesce(pending_through_transaction, checkpoint_transaction),
            checkpoint_position = coalesce(pending_through_position, checkpoint_position),
            last_delivery_at = now(), ${CLEAR_IN_FLIGHT}
      WHERE name = $1 AND generation = $2
      RETURNING ${COLUMNS}`,
    [subscription.name, subscription.generation],
    "record a delivery",
  );
  return rows[0] === undefined ? undefined : toSubscription(rows[0]);
}

/** The receiver did not take it: one more attempt, at `nextAttemptAt`. */
export async function recordFailure(
  db: FeedDatabase,
  subscription: Subscription,
  error: string,
  nextAttemptAt: Date,
): Promise<void> {
  await runStatement(
    db,
    `UPDATE feed_subscriptions
        SET attempts = attempts + 1, last_error = $3, last_error_at = now(), next_attempt_at = $4, updated_at = now()
      WHERE name = $1 AND generation = $2`,
    [subscription.name, subscription.generation, error, nextAttemptAt.toISOString()],
    "record a failed delivery",
  );
}

/**
 * The delivery in flight failed for longer than the dead-letter time: it goes to the dead
 * letters as it was sent (a re-driven one back to them) and the checkpoint moves past it.
 */
export async function recordDeadLetter(
  db: FeedDatabase,
  subscription: Subscription,
  delivery: { webhookId: string; events: readonly FeedEvent[] },
  error: string,
): Promise<void> {
  await runStatement(
    db,
    `WITH moved AS (
       UPDATE feed_subscriptions
          SET checkpoint_transaction = coalesce(pending_through_transaction, checkpoint_transaction),
              checkpoint_position = coalesce(pending_through_position, checkpoint_position),
              last_error = $5, last_error_at = now(), ${CLEAR_IN_FLIGHT}
        WHERE name = $1 AND generation = $2
        RETURNING name
     ), again AS (
       UPDATE feed_subscription_dead_letters
          SET dead_at = now(), attempts = attempts + $7, last_error = $5, redrive_requested_at = NULL
        WHERE id = $6::bigint AND EXISTS (SELECT 1 FROM moved)
     )
     INSERT INTO feed_subscription_dead_letters (subscription, webhook_id, events, first_attempt_at, attempts, last_error)
     SELECT name, $3, $4::jsonb, $8::timestamptz, $7, $5 FROM moved WHERE $6::bigint IS NULL`,
    [
      subscription.name,
      subscription.generation,
      delivery.webhookId,
      JSON.stringify(delivery.events),
      error,
      subscription.pendingDeadLetter ?? null,
      subscription.attempts + 1,
      (subscription.pendingSince ?? new Date()).toISOString(),
    ],
    "dead-letter a delivery",
  );
}

function toSubscription(row: unknown): Subscription {
  const parsed = SubscriptionRow.safeParse(row);
  if (!parsed.success) {
    throw new CorruptRow(`A feed_subscriptions row has an unexpected shape: ${describeIssues(parsed.error)}`);
  }
  const r = parsed.data;
  return {
    name: r.name,
    url: r.url,
    secret: r.secret,
    eventTypes: r.event_types ?? undefined,
    streamTypes: r.stream_types ?? undefined,
    batchSize: r.batch_size,
    paused: r.paused,
    generation: r.generation,
    checkpoint: { transactionId: r.checkpoint_transaction, globalPosition: r.checkpoint_position },
    pendingThrough:
      r.pending_through_transaction === null || r.pending_through_position === null
        ? undefined
        : { transactionId: r.pending_through_transaction, globalPosition: r.pending_through_position },
    pendingDeadLetter: r.pending_dead_letter ?? undefined,
    pendingSince: r.pending_since ?? undefined,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at ?? undefined,
    lastDeliveryAt: r.last_delivery_at ?? undefined,
    lastError: r.last_error ?? undefined,
    lastErrorAt: r.last_error_at ?? undefined,
    createdAt: r.created_at,
    redriveWaiting: r.redrive_waiting,
  };
}

function toDeadLetter(row: unknown): DeadLetter {
  const parsed = DeadLetterRow.safeParse(row);
  if (!parsed.success) {
    throw new CorruptRow(
      `A feed_subscription_dead_letters row has an unexpected shape: ${describeIssues(parsed.error)}`,
    );
  }
  const r = parsed.data;
  return {
    id: r.id,
    webhookId: r.webhook_id,
    events: r.events,
    firstAttemptAt: r.first_attempt_at,
    deadAt: r.dead_at,
    attempts: r.attempts,
    lastError: r.last_error,
    redriveRequested: r.redrive_requested_at !== null,
  };
}
