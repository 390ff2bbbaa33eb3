-- Retention walks each partition's processed ids oldest first, looks an order's state up by its key
-- alone, and deletes sent outbox rows by age: without these each step would scan a whole table.
CREATE INDEX processed_by_part_age ON processed_messages (part, processed_at);
CREATE INDEX state_by_key ON state (key);
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
