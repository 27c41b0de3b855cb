"""The GraphQL transport: types, resolvers, context and error translation."""
