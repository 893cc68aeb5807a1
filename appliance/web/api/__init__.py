"""The CAD's JSON API (API keys) and its OpenAPI document."""
