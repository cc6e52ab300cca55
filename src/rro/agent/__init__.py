"""Turning episodes into chat messages and model turns back into actions."""
