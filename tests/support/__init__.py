"""Builders and runners the test packages share (never imported by the product)."""
