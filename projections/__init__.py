"""Read models derived from the registry's events; none of them ever writes events."""
