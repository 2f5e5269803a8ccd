-- Every order moves its customer's balance: keep room on each page so that the new version of
-- an account row stays on its page (a HOT update) and its indexes are not written again.
ALTER TABLE accounts SET (fillfactor = 70);
ALTER TABLE credit_accounts SET (fillfactor = 70);
