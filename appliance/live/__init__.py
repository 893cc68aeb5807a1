"""Live calls: the signalling protocol and the hub that joins WebSockets to media rooms."""
