"""The OpenAI Videos contract ("Sora 2"): its client, its types, its reconciliation."""
