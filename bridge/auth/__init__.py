"""Who is calling: API keys, and the OAuth 2.0 authorization server for GPT Actions."""
