"""Power states of nodes: the pure policy (when to sleep a node, which node to wake)."""
