-- New points make an account due for the expiry pass again. A statement trigger on the ledger
-- did this by keeping every inserted row in a transition table (about 1 µs a row); the
-- balance write, which every ledger entry goes through and which locks the account anyway,
-- now does it in the same statement.
DROP TRIGGER ledger_points_added_check_expiry ON ledger;
DROP FUNCTION points_added_check_expiry();
