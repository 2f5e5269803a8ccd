"""SQL of the analytics service: fact writers and the report's queries."""
