"""Pure earning rules: no I/O, no clock."""
