"""What the box keeps as evidence: call captures, sealed files and the master key,
custody, integrity, retention, export, backup, signing."""
