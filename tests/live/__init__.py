"""Clients and helpers of the live-status tests."""
