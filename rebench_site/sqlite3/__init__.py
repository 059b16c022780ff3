"""The embedded database: Django's SQLite backend with writers queued at a gate of their own."""
