"""Registration of the built-in rules (private)."""
