// Runs one GraphQL operation with the reference graphql-ws client (graphql-transport-ws) and
// prints every event as one JSON line: {"event": "next" | "error" | "complete" | "closed", ...}.
// Usage: node ws-operation.mjs <ws url> '<{"query": ..., "variables": ...}>' ['<connection_init payload>']
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, request, params] = process.argv.slice(2);
const print = (message) => process.stdout.write(JSON.stringify(message) + "\n");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: params ? JSON.parse(params) : undefined,
  retryAttempts: 0,
  lazy: true,
  on: {
    closed: (event) => print({ event: "closed", code: event?.code, reason: event?.reason }),
  },
});

client.subscribe(JSON.parse(request), {
  next: (value) => print({ event: "next", value }),
  error: (error) =>
    print({
      event: "error",
      error: Array.isArray(error) ? error : { message: String(error?.message ?? error), code: error?.code, reason: error?.reason },
    }),
  complete: () => {
    print({ event: "complete" });
    client.dispose();
  },
});
