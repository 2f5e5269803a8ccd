"""Pure notify rules: what to send when, and whether a message may go now; no I/O, no clock."""
