"""Information governance: the privacy notice, subject access, the audit search and the
DPIA annex. The top of the services: it reads every domain and no domain reads it."""
