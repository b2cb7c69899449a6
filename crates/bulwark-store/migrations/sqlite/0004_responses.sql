-- Stored OpenAI Responses (issue 13): conversation state kept by Bulwark,
-- not by a provider, so a fallback target on another provider gets the
-- whole history. Each row holds the full expanded input of its response,
-- so continuing a conversation is one read, never a walk up a chain.
-- `tenant` is the client key's name, NULL on a gateway without keys.
CREATE TABLE responses (
    id          TEXT    PRIMARY KEY NOT NULL,
    tenant      TEXT,
    created_ms  INTEGER NOT NULL,
    input_items TEXT    NOT NULL,
    response    TEXT    NOT NULL
);
CREATE INDEX responses_created ON responses (created_ms);
