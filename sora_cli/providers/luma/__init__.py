"""Luma Dream Machine (generations API): its adapter."""
