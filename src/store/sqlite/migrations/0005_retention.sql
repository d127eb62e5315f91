-- Pruning deletes requests no attempt refers to any more.
CREATE INDEX attempts_request ON attempts (request_id) WHERE request_id IS NOT NULL;
