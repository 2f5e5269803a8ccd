-- A refund that gives back a membership's SKU ends the membership, even when the rest of the
-- order is kept: the units of the SKU the order bought, the units refunds have given back so
-- far, and when the membership was cancelled (so that it is announced once).
-- Memberships recorded before this migration count as one unit: any refund listing their SKU
-- ends them. Those whose order was cancelled or refunded in full were announced already; earn
-- knows them from the order and does not announce them again.
ALTER TABLE memberships ADD COLUMN quantity bigint NOT NULL DEFAULT 1 CHECK (quantity > 0);
ALTER TABLE memberships ADD COLUMN refunded_quantity bigint NOT NULL DEFAULT 0
    CHECK (refunded_quantity >= 0);
ALTER TABLE memberships ADD COLUMN cancelled_at timestamptz;
