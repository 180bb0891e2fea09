"""The hand-off over the Model Context Protocol, mounted at ``/mcp`` beside the HTTP API."""
