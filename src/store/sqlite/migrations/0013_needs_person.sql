-- The dashboard's first screen lists the newest deliveries that need a person (dead, rejected,
-- in doubt). Walking this partial index backwards stops at the page's end; the state index made
-- it read and sort every such delivery the ledger ever held (docs/adr/0010-a-long-history.md).
CREATE INDEX deliveries_needs_person ON deliveries (updated_at, id) WHERE state IN ('dead', 'rejected', 'in_doubt');
