"""Pure tier rules: no I/O, no clock; time comes in as arguments."""
