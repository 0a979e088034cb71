"""curate.train"""
