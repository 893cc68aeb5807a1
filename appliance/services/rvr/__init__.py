"""Rapid Video Response: the track, its safety rules and Clare's Law, and DASH."""
