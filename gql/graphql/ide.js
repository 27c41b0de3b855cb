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
    "# Operations on domains need a token. In the",
    "# Headers tab below, replace pk_live_YOUR_API_KEY",
    "# with your API key (`gql-gateway keys create`)",
    "# or a session token. The docs (top-left icon)",
    "# need none.",
    "#",
    "# Run: Ctrl-Enter or the run button.",
    "# History: the clock icon.",
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

  // GraphiQL saves each history entry with its headers, API key included, even when headers
  // are not persisted. Saved entries lose their headers unless the user turns on
  // "Persist headers" in the settings.
  var HISTORY = { "graphiql:queries": "queries", "graphiql:favorites": "favorites" };

  function withoutHeaders(key, value) {
    if (!(key in HISTORY) || localStorage.getItem("graphiql:shouldPersistHeaders") === "true") {
      return value;
    }
    var saved = JSON.parse(value);
    (saved[HISTORY[key]] || []).forEach(function (entry) {
      delete entry.headers;
    });
    return JSON.stringify(saved);
  }

  var storage = {
    getItem: function (key) {
      return localStorage.getItem(key);
    },
    setItem: function (key, value) {
      localStorage.setItem(key, withoutHeaders(key, value));
    },
    removeItem: function (key) {
      localStorage.removeItem(key);
    },
    clear: function () {
      Object.keys(localStorage)
        .filter(function (key) {
          return key.indexOf("graphiql:") === 0;
        })
        .forEach(function (key) {
          localStorage.removeItem(key);
        });
    },
    get length() {
      return Object.keys(localStorage).filter(function (key) {
        return key.indexOf("graphiql:") === 0;
      }).length;
    },
  };

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      storage: storage,
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
