import { z } from "zod";
import type { SqlQueryable } from "../db/sql-client";
import { bigintColumn, parseRow } from "./rows";
import { RedeliveryMismatch } from "./store-errors";

// Webhook deliveries (migrations/0004_webhook_deliveries.sql): what makes POST
// /webhooks/:source idempotent. A message is known by its source and webhook-id, never
// by event ids (those are random, so nobody can claim them before the sender delivers);
// the first delivery is recorded with its body's SHA-256 and where its events went, by
// the same statement that appends them.
//
// Everything about the table is here: the record, the rule a redelivery is judged by,
// the lookup, and the two parts the append statement folds in (a probe, like the one
// for caller-chosen event ids, and the insert), so that writing a delivery costs no
// round trip of its own.

/** A verified delivery, as the webhook route hands it to the stream's actor. */
export interface WebhookDelivery {
  source: string;
  webhookId: string;
  /** Lower-case hex SHA-256 of the body exactly as it was signed. */
  bodySha256: string;
}

/** A delivery as recorded: where its events went. */
export interface RecordedDelivery extends WebhookDelivery {
  streamId: string;
  eventIds: string[];
  versions: number[];
}

/** What identifies a message: its source and webhook-id. */
export function deliveryKey(delivery: Pick<WebhookDelivery, "source" | "webhookId">): string {
  return `${delivery.source}\n${delivery.webhookId}`;
}

/**
 * How `delivery` stands against the one recorded under its key: undefined when none
 * is (a first delivery: write it), the first delivery's event ids and versions when
 * the body is the same (a redelivery: write nothing, answer as the first), and
 * RedeliveryMismatch when the body differs (refuse: its events are not the first's).
 */
export function earlierDelivery(
  streamId: string,
  delivery: WebhookDelivery,
  recorded: RecordedDelivery | undefined,
): { eventIds: string[]; versions: number[] } | RedeliveryMismatch | undefined {
  if (recorded === undefined) return undefined;
  if (recorded.bodySha256 !== delivery.bodySha256 || recorded.streamId !== streamId) {
    return new RedeliveryMismatch(delivery.source, delivery.webhookId);
  }
  return { eventIds: recorded.eventIds, versions: recorded.versions };
}

/** Lower-case hex SHA-256 of `body`. */
export async function bodySha256(body: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

const RecordedRow = z.object({
  source: z.string(),
  webhook_id: z.string(),
  body_sha256: z.string(),
  stream_id: z.string(),
  event_ids: z.array(z.string()),
  versions: z.array(bigintColumn),
});

/** A recorded row (a table row, or an element of the probe's JSON answer) as a RecordedDelivery. */
export function parseRecordedDelivery(row: unknown): RecordedDelivery {
  const parsed = parseRow(RecordedRow, row, "webhook_deliveries");
  return {
    source: parsed.source,
    webhookId: parsed.webhook_id,
    bodySha256: parsed.body_sha256,
    streamId: parsed.stream_id,
    eventIds: parsed.event_ids,
    versions: parsed.versions,
  };
}

/** The recorded deliveries among `keys` (one statement). */
export async function findDeliveries(
  db: SqlQueryable,
  keys: readonly Pick<WebhookDelivery, "source" | "webhookId">[],
): Promise<RecordedDelivery[]> {
  if (keys.length === 0) return [];
  const result = await db.query(
    `SELECT d.source, d.webhook_id, d.body_sha256, d.stream_id, d.event_ids, d.versions
       FROM webhook_deliveries d
       JOIN jsonb_to_recordset($1::jsonb) AS k(source text, webhook_id text)
         ON d.source = k.source AND d.webhook_id = k.webhook_id`,
    [JSON.stringify(keys.map((key) => ({ source: key.source, webhook_id: key.webhookId })))],
  );
  return result.rows.map(parseRecordedDelivery);
}

// The append statement's two parts (append-statement.ts), on one JSON parameter `$n`:
// {"probe": [{source, webhook_id}], "record": [{source, webhook_id, body_sha256, event_ids, versions}]}.

/** The parameter: the batch's deliveries not known to be new (probed), and the accepted ones (recorded). */
export function deliveriesParameter(
  probe: readonly Pick<WebhookDelivery, "source" | "webhookId">[],
  record: readonly RecordedDelivery[],
): string {
  return JSON.stringify({
    probe: probe.map((key) => ({ source: key.source, webhook_id: key.webhookId })),
    record: record.map((delivery) => ({
      source: delivery.source,
      webhook_id: delivery.webhookId,
      body_sha256: delivery.bodySha256,
      event_ids: delivery.eventIds,
      versions: delivery.versions,
    })),
  });
}

/**
 * CTE `delivered`: the probed deliveries already recorded. The statement writes nothing
 * when it has a row (the head's write is conditioned on it) and answers them.
 */
export const deliveredCte = (param: string) => `delivered AS (
    SELECT d.source, d.webhook_id, d.body_sha256, d.stream_id, d.event_ids, d.versions
      FROM webhook_deliveries d
      JOIN jsonb_to_recordset(${param}::jsonb -> 'probe') AS k(source text, webhook_id text)
        ON d.source = k.source AND d.webhook_id = k.webhook_id
  )`;

/** CTE `recorded`: the accepted deliveries, written only with the head (so only with their events). */
export const recordedCte = (param: string) => `recorded AS (
    INSERT INTO webhook_deliveries (source, webhook_id, body_sha256, stream_id, event_ids, versions)
    SELECT r.source, r.webhook_id, r.body_sha256, head.stream_id, r.event_ids, r.versions
      FROM head, jsonb_to_recordset(${param}::jsonb -> 'record')
        AS r(source text, webhook_id text, body_sha256 text, event_ids uuid[], versions bigint[])
    RETURNING 1
  )`;

/** The answer column: the recorded deliveries the probe found (null for none). */
export const DELIVERED_COLUMN = `(SELECT json_agg(json_build_object(
    'source', source, 'webhook_id', webhook_id, 'body_sha256', body_sha256,
    'stream_id', stream_id, 'event_ids', event_ids, 'versions', versions)) FROM delivered) AS delivered`;

/** The unique constraint a racing record violates: answered like the probe's finding. */
export const DELIVERY_KEY_CONSTRAINT = "webhook_deliveries_key";
