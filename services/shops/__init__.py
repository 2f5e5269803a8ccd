"""The shops service: shops, programmes as versioned data, API keys, and their audit."""
