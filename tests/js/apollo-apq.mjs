// Runs operations through Apollo Client with its persisted-query link (hashed queries over
// GET) and prints one JSON line per HTTP request and per result:
//   {"event": "fetch", "method", "sentQuery", "hash", "status"}
//   {"event": "result", "data", "errors"} or {"event": "error", "message"}
// Usage: node apollo-apq.mjs <graphql url> <token> '<[{"query", "variables"}, ...]>'
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [uri, token, operations] = process.argv.slice(2);
const print = (message) => process.stdout.write(JSON.stringify(message) + "\n");

async function loggingFetch(url, options) {
  const target = new URL(url);
  let body = {};
  if (options.method === "GET") {
    const extensions = target.searchParams.get("extensions");
    body = { query: target.searchParams.get("query"), extensions: extensions && JSON.parse(extensions) };
  } else {
    body = JSON.parse(options.body);
  }
  const response = await fetch(url, options);
  print({
    event: "fetch",
    method: options.method,
    sentQuery: typeof body.query === "string",
    hash: body.extensions?.persistedQuery?.sha256Hash ?? null,
    status: response.status,
    contentType: response.headers.get("content-type"),
  });
  return response;
}

const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: true,
  }).concat(
    new HttpLink({ uri, fetch: loggingFetch, headers: { authorization: `Bearer ${token}` } }),
  ),
});

for (const { query, variables } of JSON.parse(operations)) {
  const document = gql(query);
  const isMutation = document.definitions.some((d) => d.operation === "mutation");
  try {
    const result = isMutation
      ? await client.mutate({ mutation: document, variables })
      : await client.query({ query: document, variables, fetchPolicy: "network-only" });
    print({ event: "result", data: result.data ?? null, errors: result.error?.errors ?? null });
  } catch (error) {
    print({ event: "error", message: String(error?.message ?? error) });
  }
}
print({ event: "done" });
