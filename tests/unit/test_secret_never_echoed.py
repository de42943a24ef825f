"""A Slack (or SMS gateway) Secret that is not an http(s) URL is never echoed, in any part
(issue 21: `x://token` or `//token` had their "host", the token itself, named in the error)."""

from __future__ import annotations

import asyncio
import datetime
import string

from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from controller.adapters import notify
from controller.adapters import notify_slack
from controller.api import alertpolicy
from controller.core import alerting

FIXED = "the URL in the Secret is not an http(s) URL with a host"
CHANNEL = alertpolicy.Channel.model_validate({"name": "slack", "slack": {"webhookSecretRef": {"name": "s", "key": "k"}}})
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
MESSAGE = notify.Message(alerting.Notification("k1", "slack", "firing", "R", "web", "critical", "down", NOW),
                         namespace="a", policy="p", sent_at=NOW, valid_for=datetime.timedelta(minutes=15))


def delivery_error(secret_value: str) -> str:
    async def secret(ref: object) -> str:
        return secret_value

    async def scenario() -> str:
        poster = notify.HttpPoster(allow_loopback=False)
        try:
            await notify_slack.SlackNotifier(poster).send(CHANNEL, MESSAGE, secret)
        except notify.DeliveryError as error:
            return str(error)
        finally:
            await poster.close()
        return "sent"

    return asyncio.run(scenario())


tokens = st.text(string.ascii_letters + string.digits + "-_.", min_size=8, max_size=40)
shapes = st.sampled_from(["{s}//{t}", "//{t}", "//{t}/x", "{t}//x", "{s}://{t}", "{s}://user:{t}@h/x", "{s}://{t}:80/",
                          "{t} //{t}", "http:/{t}", "http:{t}//x"])
schemes = st.sampled_from(["x", "ftp", "mailto", "hunter", "file", "gopher", "http+unix", "ws", "javascript"])


@settings(max_examples=300, deadline=None)
@given(shapes, schemes, tokens)
@example("{s}://{t}", "x", "hunter2-secret")
@example("//{t}", "x", "hunter2-secret")
def test_no_part_of_a_secret_that_is_not_a_url_is_echoed(shape: str, scheme: str, token: str) -> None:
    value = shape.format(s=scheme, t=token)
    error = delivery_error(value)
    assert error == FIXED, (value, error)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_anything_that_is_not_an_http_url_gets_the_one_fixed_text(value: str) -> None:
    if value.strip().lower().startswith(("http://", "https://")):
        return  # an http(s) URL may be named by its host (docs/security.md)
    assert delivery_error(value) == FIXED, value
