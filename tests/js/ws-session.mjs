// Runs one GraphQL operation `count` times, one after the other, over one graphql-ws connection
// that then stays open, printing every event as one JSON line:
// {"event": "next" | "error" | "complete", "n": <run>, ...}, {"event": "done"} after the last run,
// and {"event": "closed", "code": ..., "reason": ...} when the server closes the socket.
// Usage: node ws-session.mjs <ws url> '<{"query": ...}>' <count> ['<connection_init payload>'] ['<upgrade headers>']
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, request, count, params, headers] = process.argv.slice(2);
const print = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const upgradeHeaders = headers ? JSON.parse(headers) : {};

class HeaderWebSocket extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols, { headers: upgradeHeaders });
  }
}

const client = createClient({
  url,
  webSocketImpl: HeaderWebSocket,
  connectionParams: params ? JSON.parse(params) : undefined,
  retryAttempts: 0,
  lazy: false,
  onNonLazyError: () => {},
  on: {
    closed: (event) => print({ event: "closed", code: event?.code, reason: event?.reason }),
  },
});

const describe = (error) =>
  Array.isArray(error) ? error : { message: String(error?.message ?? error), code: error?.code };

for (let n = 0; n < Number(count); n++) {
  await new Promise((resolve) =>
    client.subscribe(JSON.parse(request), {
      next: (value) => print({ event: "next", n, value }),
      error: (error) => {
        print({ event: "error", n, error: describe(error) });
        resolve();
      },
      complete: () => {
        print({ event: "complete", n });
        resolve();
      },
    }),
  );
}
print({ event: "done" });
