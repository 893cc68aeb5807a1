"""What leaves the box, queued with the change that causes it: SMS and CAD events."""
