"""Twilio Studio in the sandbox: flows, and what a flow's Send to Flex does."""
