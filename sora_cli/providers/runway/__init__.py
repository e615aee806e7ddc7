"""Runway (task API): its adapter."""
