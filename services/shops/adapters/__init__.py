"""What the shops service reads and writes: its PostgreSQL tables."""
