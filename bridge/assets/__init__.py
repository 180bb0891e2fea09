"""Files assistants read, shipped inside the package: the OpenAPI contract, the plugin
manifest template, the logo and the legal text."""
