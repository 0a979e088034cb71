"""curate.embed"""
