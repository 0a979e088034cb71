"""The demo: a small corpus built offline from bundled photos (``corpus``) and the end-to-end run on it."""
