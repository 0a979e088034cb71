"""curate.analyze"""
