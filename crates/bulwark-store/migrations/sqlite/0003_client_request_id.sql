-- The x-request-id a client sent, when sane (issue 15); the row's id stays
-- Bulwark's own, since clients reuse ids and the id is the log's key.
ALTER TABLE requests ADD COLUMN client_request_id TEXT;
