"""Pure functions on attention arrays laid out as (layers, heads, query, key)."""
