// Runs graphql-http's GraphQL over HTTP audit suite against a server and prints one JSON
// line per audit: {id, name, status, reason}. Usage: node http-audit.mjs <graphql url>
import { serverAudits } from "graphql-http";

const [url] = process.argv.slice(2);
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") {
    line.reason = result.reason;
    if (result.response) {
      line.responseStatus = result.response.status;
      line.contentType = result.response.headers.get("content-type");
    }
  }
  process.stdout.write(JSON.stringify(line) + "\n");
}
process.stdout.write(JSON.stringify({ done: true }) + "\n");
