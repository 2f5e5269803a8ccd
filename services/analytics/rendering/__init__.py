"""The report for people: text tables for the terminal, an HTML page with SVG charts."""
