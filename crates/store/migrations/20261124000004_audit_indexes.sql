-- Indexes for `runledger audit` (EventStore::audit_page), which filters the log by actor, event
-- type and time and returns it in position order, a page at a time.
--
-- Without them a selective filter (one actor, a narrow time window) reads the log from the start
-- until a page fills: measured ≈ 0.3–0.45 s per million events for the first page. Every btree
-- costs each append an index entry (≈ 10 µs an event for three of them, measured), and intake
-- throughput matters more than the speed of a rare audit query, so:
-- - "who asked for what" gets a btree: one actor's events in log order;
-- - time windows get a BRIN index: `recorded_at` grows with `position`, so block ranges summarise
--   it well, and a BRIN index costs next to nothing to maintain;
-- - event types and stream types get none: filters on them scan in position order, which fills
--   pages quickly for common types (a rare type over a huge log is the slow case).
-- Filters by stream id use events_stream_version_unique.

CREATE INDEX events_actor_position ON events (actor, position);

CREATE INDEX events_recorded_at_brin ON events USING brin (recorded_at);
