"""Plain Python over the database session.

No aiohttp in here, so each service is tested without a server.
"""
