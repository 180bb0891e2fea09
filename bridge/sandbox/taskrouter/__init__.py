"""TaskRouter in the sandbox: a workspace that routes Flex tasks to workers, at
``/sandbox/taskrouter/v1`` (point ``client.taskrouter.base_url`` at ``…/sandbox/taskrouter``)."""
