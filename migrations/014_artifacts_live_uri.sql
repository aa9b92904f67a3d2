-- Retention keeps a checkpoint whose objects another live artifact row names: the same URI,
-- a URI under the checkpoint's directory, or a directory above it. It finds those rows by
-- URI in this index. The C collation orders URIs byte by byte, so the URIs under a
-- directory "P/" form the one range from "P/" up to "P0", because '0' follows '/'.
CREATE INDEX artifacts_live_uri_idx ON artifacts (storage_uri COLLATE "C")
    WHERE delete_started_at IS NULL;

---- create above / drop below ----

DROP INDEX artifacts_live_uri_idx;
