"""plateforge_server: the inference server (torch side). Hosts never import this package."""
