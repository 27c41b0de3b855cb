"""The legacy REST transport: `PATCH /api/email/domains/{id}`."""
