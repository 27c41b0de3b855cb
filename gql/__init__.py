"""GraphQL gateway for custom email sending domains."""
