"""curate.distort"""
