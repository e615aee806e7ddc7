"""Kling's own API, with a JWT signed per request."""
