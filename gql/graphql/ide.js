// Starts GraphiQL on the gateway's own page. Operations go to the URL this page was served from,
// subscriptions to the same URL over WebSocket (wss: when the page came over https:).
(function () {
  "use strict";

  var url = window.location.origin + window.location.pathname;
  var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  var subscriptionUrl = scheme + "//" + window.location.host + window.location.pathname;

  var defaultQuery = [
    "# GraphiQL for the email-domain gateway.",
    "#",
    "# Operations on domains need a token: in the Headers",
    "# tab below, replace pk_live_YOUR_API_KEY with your key",
    "# (`gql-gateway keys create --user <uuid>`) or a session",
    "# token. The schema docs (top-left icon) need none.",
    "#",
    "# Run: Ctrl-Enter or the run button. History: the clock.",
    "",
    "query Domains {",
    "  emailDomains(first: 10) {",
    "    totalCount",
    "    edges {",
    "      node {",
    "        id",
    "        domain",
    "        status",
    "        updatedAt",
    "      }",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");

  // Header values must be ISO-8859-1, so the placeholder is plain ASCII.
  var defaultHeaders = JSON.stringify({ Authorization: "Bearer pk_live_YOUR_API_KEY" }, null, 2);

  var fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: subscriptionUrl });

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: defaultHeaders,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      // Keys stay out of the browser's storage; queries and history are kept.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    }),
  );
})();
