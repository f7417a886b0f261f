"""Serving: the champion's batch recommendations."""
