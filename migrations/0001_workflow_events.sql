-- The stream head: one row per stream, moved by every append. Optimistic concurrency
-- is enforced here (UPDATE ... WHERE version = expected) and, independently, by the
-- unique (stream_id, version) on workflow_events.
CREATE TABLE workflow_streams (
  stream_id   uuid        PRIMARY KEY,
  stream_type text        NOT NULL CHECK (stream_type <> ''),
  version     bigint      NOT NULL CHECK (version >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workflow_streams_type_idx ON workflow_streams (stream_type, stream_id);

-- The log. global_position orders every event of every stream for an all-streams feed.
CREATE TABLE workflow_events (
  global_position bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id        uuid        NOT NULL,
  stream_id       uuid        NOT NULL REFERENCES workflow_streams (stream_id),
  stream_type     text        NOT NULL,
  version         bigint      NOT NULL CHECK (version >= 1),
  event_type      text        NOT NULL,
  event           jsonb       NOT NULL,
  metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
  occurred_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT workflow_events_event_id_key UNIQUE (event_id),
  -- Also the index for reading a stream forwards and backwards by version.
  CONSTRAINT workflow_events_stream_version_key UNIQUE (stream_id, version)
);
