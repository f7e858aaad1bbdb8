-- The workflow status on the head, so streams can be listed by status without
-- replaying them. Written by every append from the state the append produced.
ALTER TABLE workflow_streams
  ADD COLUMN status text NOT NULL DEFAULT 'pending'
  CHECK (status IN ('pending', 'running', 'completed', 'failed'));

CREATE INDEX workflow_streams_status_idx ON workflow_streams (status, stream_id);
