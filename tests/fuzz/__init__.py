"""A seeded fuzz harness for the per-file path (scan, read_input, the screening decode)."""
