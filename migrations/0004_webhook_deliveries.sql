-- Webhook deliveries (issue 10, row 1): idempotency of POST /webhooks/:source rests on
-- (source, webhook-id), not on event ids anyone could compute. One row per message a
-- source delivered, written by the same statement that appends its events (so there is
-- never one without the other): the SHA-256 of the body as it was signed, and where its
-- events went. A redelivery with the same body is answered from here (200, the first
-- delivery's versions and event ids); one with another body is refused (409). The
-- events themselves get random ids, so nobody can claim them before the sender delivers.
CREATE TABLE webhook_deliveries (
  source       text        NOT NULL CHECK (source ~ '^[a-z0-9_-]{1,64}$'),
  webhook_id   text        NOT NULL CHECK (length(webhook_id) BETWEEN 1 AND 256),
  body_sha256  text        NOT NULL CHECK (body_sha256 ~ '^[0-9a-f]{64}$'),
  stream_id    uuid        NOT NULL REFERENCES workflow_streams (stream_id),
  event_ids    uuid[]      NOT NULL,
  versions     bigint[]    NOT NULL CHECK (cardinality(versions) = cardinality(event_ids)),
  delivered_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT webhook_deliveries_key PRIMARY KEY (source, webhook_id)
);
