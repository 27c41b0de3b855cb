// Subscribes with the reference graphql-ws client (graphql-transport-ws) and prints every event
// as one JSON line: {"event": "next" | "error" | "complete" | "closed", ...}. The token goes in
// the connection_init payload, as a browser sends it.
// Usage: node ws-subscribe.mjs <ws url> '<{"query": ..., "variables": ...}>' <bearer token>
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, request, token] = process.argv.slice(2);
const print = (message) => process.stdout.write(JSON.stringify(message) + "\n");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: {
    connected: () => print({ event: "connected" }),
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
  complete: () => print({ event: "complete" }),
});
