"""Replicate (predictions API): its adapter."""
