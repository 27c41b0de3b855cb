// The README's frontend example, run as a test: Apollo Client with GraphQLWsLink subscribing to
// emailDomainEvents; prints each result as one JSON line.
// Usage: node apollo-subscribe.mjs <ws url> '<{"query": ..., "variables": ...}>' <bearer token>
import { ApolloClient, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, request, token] = process.argv.slice(2);
const print = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const { query, variables } = JSON.parse(request);

class AuthorizedWebSocket extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols, { headers: { Authorization: `Bearer ${token}` } });
  }
}

const client = new ApolloClient({
  link: new GraphQLWsLink(
    createClient({
      url,
      webSocketImpl: AuthorizedWebSocket,
      connectionParams: { Authorization: `Bearer ${token}` },
    }),
  ),
  cache: new InMemoryCache(),
});

client.subscribe({ query: gql(query), variables }).subscribe({
  next: (result) => print({ event: "next", value: { data: result.data ?? null, errors: result.error ? [String(result.error)] : undefined } }),
  error: (error) => print({ event: "error", error: { message: String(error?.message ?? error) } }),
  complete: () => print({ event: "complete" }),
});
