-- The global feed's order (issue 12): every event carries the id of the transaction
-- that wrote it. Positions (global_position) are taken when a row is inserted, not when
-- its transaction commits, so a reader that passed position 1001 might never see 1000,
-- committed later. The feed therefore reads only rows of transactions older than every
-- transaction still running (transaction_id < pg_snapshot_xmin(pg_current_snapshot()))
-- in (transaction_id, global_position) order: a row that becomes visible later always
-- sorts after everything already read.
--
-- The default fills the column for every writer, the append statement included, with no
-- change to it. Existing rows get '0': a constant default is stored in the catalog, so
-- adding the column rewrites nothing and holds its ACCESS EXCLUSIVE lock only for the
-- catalog change (no batched UPDATE, no table rewrite). '0' is right for them: this
-- statement waits for every transaction that has written to the table to end, so every
-- existing row is committed, and each sorts by its global_position as before, ahead of
-- every row written from now on (a real transaction id is at least 3). Setting the
-- volatile default afterwards changes the catalog only.
ALTER TABLE workflow_events ADD COLUMN transaction_id xid8 NOT NULL DEFAULT '0'::xid8;
ALTER TABLE workflow_events ALTER COLUMN transaction_id SET DEFAULT pg_current_xact_id();

-- The feed's read index. Building it blocks writes (not reads) to the table for as long
-- as the build takes; the runner applies migrations in one transaction, where CREATE
-- INDEX CONCURRENTLY is not allowed. On a large table, build it first by hand with
--   CREATE INDEX CONCURRENTLY workflow_events_feed_idx ON workflow_events (transaction_id, global_position);
-- and this statement then does nothing.
CREATE INDEX IF NOT EXISTS workflow_events_feed_idx ON workflow_events (transaction_id, global_position);
