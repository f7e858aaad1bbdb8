-- Outbound subscriptions (issue 12): the global feed delivered to HTTP endpoints as
-- signed Standard Webhooks, one delivery at a time, by one Durable Object alarm each.
-- The row is the subscription's whole state: its configuration, the checkpoint up to
-- which its receiver has answered 2xx, and the delivery in flight, so any instance of
-- its actor (after an eviction, a deploy) carries on exactly where the last one stopped.
CREATE TABLE feed_subscriptions (
  name          text        PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]{1,64}$'),
  url           text        NOT NULL,
  -- The signing secret (whsec_...): shown once, when the subscription is made; the
  -- actor signs with it, so it is kept as is (like WEBHOOK_SECRETS, which the Worker holds).
  secret        text        NOT NULL,
  event_types   text[],     -- NULL: every event type
  stream_types  text[],     -- NULL: every stream type
  batch_size    integer     NOT NULL CHECK (batch_size BETWEEN 1 AND 100),
  paused        boolean     NOT NULL DEFAULT false,
  -- Bumped by a replay and by a change of filters or batch size: a delivery that was in
  -- flight then moves nothing when it ends.
  generation    bigint      NOT NULL DEFAULT 1,
  -- Every event up to here (feed order) has been answered 2xx or dead-lettered.
  checkpoint_transaction xid8   NOT NULL,
  checkpoint_position    bigint NOT NULL,
  -- The batch in flight: the feed's events after the checkpoint up to here, resent as
  -- exactly this batch (same events, same webhook-id) until it is answered 2xx or dead-lettered.
  pending_through_transaction xid8,
  pending_through_position    bigint,
  -- Or a dead letter being re-driven.
  pending_dead_letter bigint,
  -- When the delivery in flight was first attempted, how often, and when next.
  pending_since    timestamptz,
  attempts         integer     NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz,
  last_delivery_at timestamptz,
  last_error       text,
  last_error_at    timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((pending_through_transaction IS NULL) = (pending_through_position IS NULL))
);

-- Batches a receiver did not take within SUBSCRIPTION_DEAD_LETTER_AFTER_MS: kept as they
-- were sent, until re-driven (POST /subscriptions/:name/dead-letters/redrive) and taken.
CREATE TABLE feed_subscription_dead_letters (
  id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription     text        NOT NULL REFERENCES feed_subscriptions (name) ON DELETE CASCADE,
  webhook_id       text        NOT NULL,
  events           jsonb       NOT NULL,
  first_attempt_at timestamptz NOT NULL,
  dead_at          timestamptz NOT NULL DEFAULT now(),
  attempts         integer     NOT NULL,
  last_error       text        NOT NULL,
  redrive_requested_at timestamptz
);

CREATE INDEX feed_subscription_dead_letters_subscription_idx
  ON feed_subscription_dead_letters (subscription, id);
