-- One update's events without a pass over its pipeline's whole log: the
-- pipeline page reads an update's flows and events while it runs.
CREATE INDEX pipeline_events_by_update ON pipeline_events (update_id, seq);
