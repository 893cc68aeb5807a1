"""The officer's record of an incident: THRIVE, notes, outcome, the witness statement."""
