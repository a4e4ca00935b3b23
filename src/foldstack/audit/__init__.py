"""Leak audit helpers: content hashes of image files (exact duplicates) and the report of `make audit`."""
