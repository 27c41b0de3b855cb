"""Local fakes of the providers, served on loopback so the official SDKs can be tested for real.

- `FakeAgentMail` (`tests.fakes.agentmail`): AgentMail's `/v0/domains` API.
- `FakeCloudflare` (`tests.fakes.cloudflare`): Cloudflare's v4 zones and DNS records.
- `LiveServer` (`tests.fakes.server`): any ASGI app under uvicorn on `127.0.0.1:<free port>`.

Typical use, with a server per session and clean state per test::

    @pytest.fixture(scope="session")
    def agentmail_server() -> Iterator[FakeAgentMail]:
        with FakeAgentMail(api_key="test") as fake:
            yield fake

    @pytest.fixture
    def agentmail(agentmail_server: FakeAgentMail) -> FakeAgentMail:
        agentmail_server.reset()
        return agentmail_server

    # settings.agentmail_base_url = agentmail.url
    # AsyncCloudflare(api_token="test", base_url=cloudflare.url + "/client/v4", max_retries=0)
"""

from tests.fakes.agentmail import FakeAgentMail
from tests.fakes.cloudflare import FakeCloudflare
from tests.fakes.server import FakeProvider, LiveServer, RecordedRequest

__all__ = ["FakeAgentMail", "FakeCloudflare", "FakeProvider", "LiveServer", "RecordedRequest"]
