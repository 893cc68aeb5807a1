"""A call's life: invites and the caller's link, the state machine, what each move
means (life.py), and guests who join a live call."""
