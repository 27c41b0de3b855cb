"""WebSocket and CORS origins, and session tokens verified with a public key."""

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.utils import base64url_encode
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from gql.app import create_app
from tests.conftest import make_settings, running
from tests.fakes import LiveServer
from tests.helpers import MakeOwner

FRONTEND = "https://app.example.com"
QUERY = {"query": "{ emailDomains { totalCount } }"}


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[str]:
    app = create_app(make_settings(database_url, cors_origins=[FRONTEND]))
    with LiveServer(app, lifespan=True, websockets=True, name="gateway") as server:
        yield server.url.replace("http://", "ws://") + "/graphql"


async def test_websocket_from_the_configured_frontend_is_accepted(live: str) -> None:
    async with connect(
        live, origin=Origin(FRONTEND), subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        assert ws.subprotocol == "graphql-transport-ws"


async def test_websocket_from_another_origin_is_refused(live: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            live,
            origin=Origin("https://evil.example"),
            subprotocols=[Subprotocol("graphql-transport-ws")],
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_cors_answers_only_the_configured_frontend(database_url: str) -> None:
    app = create_app(make_settings(database_url, cors_origins=[FRONTEND]))
    async with running(app) as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = await client.options("/graphql", headers={"Origin": FRONTEND, **preflight})
        assert allowed.headers["access-control-allow-origin"] == FRONTEND
        refused = await client.options(
            "/graphql", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in refused.headers


def _rsa_pair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


async def test_rs256_tokens_and_no_hmac_confusion(database_url: str, make_owner: MakeOwner) -> None:
    private, public = _rsa_pair()
    settings = make_settings(
        database_url, jwt_secret=None, jwt_public_key=public, jwt_algorithms=["RS256"]
    )
    owner = await make_owner(["pending"])
    claims: dict[str, Any] = {
        "sub": str(owner.user_id),
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    good = jwt.encode(claims, private, "RS256")
    # The classic confusion: an HS256 token signed with the public key as the HMAC secret.
    header = base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    expires = int(claims["exp"].timestamp())
    payload = base64url_encode(f'{{"sub":"{owner.user_id}","exp":{expires}}}'.encode())
    signature = base64url_encode(
        hmac.new(public.encode(), header + b"." + payload, hashlib.sha256).digest()
    )
    forged = b".".join([header, payload, signature]).decode()
    async with running(create_app(settings)) as client:
        ok = await client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {good}"})
        assert ok.json()["data"]["emailDomains"]["totalCount"] == 1
        bad = await client.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {forged}"}
        )
        assert bad.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        rest = await client.patch(
            f"/api/email/domains/{owner.domains[0].id}",
            json={"status": "failed"},
            headers={"Authorization": f"Bearer {forged}"},
        )
        assert rest.status_code == 401
