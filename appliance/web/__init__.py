"""Thin aiohttp handlers, grouped by audience: each parses, authorises, calls a service, renders."""
