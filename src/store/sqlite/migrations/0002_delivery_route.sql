-- The whole catalog route a delivery was planned with (platform options such as Meta's
-- action_source), as JSON. Rows from before this migration fall back to dest_event/browser_tracked.
ALTER TABLE deliveries ADD COLUMN route TEXT;
