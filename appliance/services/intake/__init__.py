"""What arrives and waits: the incident and its eligibility, the queue and its
targets, booked appointments, photos and videos uploaded, a shared location."""
