"""Who may use the box: staff accounts, passwords, web sessions, CAD API keys."""
