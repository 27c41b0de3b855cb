// Runs one GraphQL operation with the reference graphql-sse client ("distinct connections" mode)
// and prints every event as one JSON line: {"event": "next" | "error" | "complete", ...}.
// Usage: node sse-operation.mjs <http url of /graphql> '<{"query": ..., "variables": ...}>' ['<headers JSON>']
import { createClient } from "graphql-sse";

const [url, request, headers] = process.argv.slice(2);
const print = (message) => process.stdout.write(JSON.stringify(message) + "\n");

const client = createClient({
  url,
  headers: headers ? JSON.parse(headers) : undefined,
  retryAttempts: 0,
});

client.subscribe(JSON.parse(request), {
  next: (value) => print({ event: "next", value }),
  error: (error) =>
    print({ event: "error", error: Array.isArray(error) ? error : { message: String(error?.message ?? error) } }),
  complete: () => {
    print({ event: "complete" });
    client.dispose();
  },
});
