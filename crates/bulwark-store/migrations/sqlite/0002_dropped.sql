-- Features a translation left out for the answering target, comma-separated
-- (`x-bulwark-dropped`); NULL when nothing was.
ALTER TABLE requests ADD COLUMN dropped TEXT;
