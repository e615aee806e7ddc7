"""Veo on Google Vertex AI (predictLongRunning), with Application Default Credentials."""
