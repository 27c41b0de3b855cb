// The README's frontend example, run as a test: Apollo Client with GraphQLWsLink (split from an
// HttpLink for queries) subscribing to emailDomainEvents; prints each result as one JSON line.
// Usage: node apollo-subscribe.mjs <ws url> '<{"query": ..., "variables": ...}>' <bearer token>
import { ApolloClient, HttpLink, InMemoryCache, gql, split } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, request, token] = process.argv.slice(2);
const print = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const { query, variables } = JSON.parse(request);

const wsLink = new GraphQLWsLink(
  createClient({
    url,
    webSocketImpl: WebSocket, // a browser has its own
    connectionParams: { Authorization: `Bearer ${token}` },
  }),
);
const httpLink = new HttpLink({
  uri: url.replace(/^ws/, "http"),
  headers: { Authorization: `Bearer ${token}` },
});
const client = new ApolloClient({
  link: split(({ query }) => getMainDefinition(query).operation === "subscription", wsLink, httpLink),
  cache: new InMemoryCache(),
});

client.subscribe({ query: gql(query), variables }).subscribe({
  next: ({ data, error }) =>
    print({ event: "next", value: { data: data ?? null, errors: error ? [String(error)] : undefined } }),
  error: (error) => print({ event: "error", error: { message: String(error?.message ?? error) } }),
  complete: () => print({ event: "complete" }),
});
