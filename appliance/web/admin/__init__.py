"""Administrators' pages: accounts, the SMS outbox, CAD deliveries."""
