"""Evaluation against ground-truth tables (optional: the core runs without them)."""
