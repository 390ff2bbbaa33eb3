-- Outputs of every owned partition leave in id order, through one producer: without an index of
-- the unsent rows by id alone, finding the next page walks every row the outbox still keeps.
CREATE INDEX outbox_unsent_by_id ON outbox (id) WHERE sent_at IS NULL;
