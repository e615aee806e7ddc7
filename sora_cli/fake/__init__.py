"""`sora fake-server`: the local stand-in for every provider family, with faults."""
