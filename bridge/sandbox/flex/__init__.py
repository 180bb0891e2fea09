"""Flex in the sandbox: the Interactions API, which routes a conversation as a TaskRouter
task, at ``/sandbox/flex/v1`` (point ``client.flex_api.base_url`` at ``…/sandbox/flex``)."""
