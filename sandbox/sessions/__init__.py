"""Sessions: a sandbox object, its live interpreter and its workspace on disk."""
