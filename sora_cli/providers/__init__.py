"""The provider side: the HTTP client of each provider family, retries, downloads."""
