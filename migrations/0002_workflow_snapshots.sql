-- State snapshots, kept (not replaced) so that the state at any version is cheap:
-- the nearest snapshot at or below it plus the events after.
CREATE TABLE workflow_snapshots (
  stream_id      uuid        NOT NULL REFERENCES workflow_streams (stream_id),
  version        bigint      NOT NULL CHECK (version >= 1),
  schema_version integer     NOT NULL,
  state          jsonb       NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, version)
);
