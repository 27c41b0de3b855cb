"""The service layer: every rule of the product, shared by the GraphQL and REST transports."""
