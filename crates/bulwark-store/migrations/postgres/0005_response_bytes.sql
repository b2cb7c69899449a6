-- Each stored response's size, so a client key's total can be bounded
-- (`conversations.max_bytes_per_key`) by summing one column rather than
-- the JSON of every row.
ALTER TABLE responses ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
CREATE INDEX responses_tenant ON responses (tenant);
