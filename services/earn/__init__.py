"""services.earn: earning rules, the points ledger, redemptions and expiry."""
