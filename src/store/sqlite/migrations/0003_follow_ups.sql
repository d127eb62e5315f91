-- Requests a platform took "for processing" (Google Data Manager API): its id for the request,
-- when to ask about it next, and the last answer.
ALTER TABLE requests ADD COLUMN platform_request_id TEXT;
ALTER TABLE requests ADD COLUMN follow_up_at INTEGER;
ALTER TABLE requests ADD COLUMN follow_up TEXT;
CREATE INDEX requests_follow_up ON requests (destination, follow_up_at) WHERE follow_up_at IS NOT NULL;
