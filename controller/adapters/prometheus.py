"""Prometheus as a metric source, through prometheus-api-client (blocking; with timeouts)."""

from __future__ import annotations

import json
import typing

import prometheus_api_client
import requests

from controller.core import queries

TIMEOUT_SECONDS = 10


class PrometheusSource:
    """One Prometheus server; `query` is called from a worker thread."""

    def __init__(self, url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.url = url
        self._client = prometheus_api_client.PrometheusConnect(
            url=url, headers=headers, disable_ssl=False, timeout=TIMEOUT_SECONDS, retry=_no_retry()
        )

    def query(self, promql: str) -> queries.QueryResult:
        try:
            raw = self._client.custom_query(promql)
        except prometheus_api_client.PrometheusApiClientException as error:
            text = str(error)
            return queries.QueryResult(error=_error_message(text), invalid="HTTP Status Code 400" in text)
        except requests.Timeout:
            return queries.QueryResult(error=f"{self.url} did not answer within {TIMEOUT_SECONDS}s")
        except requests.ConnectionError:
            # Stable text (no object addresses): a condition message must not change every round.
            return queries.QueryResult(error=f"cannot connect to {self.url}")
        except requests.RequestException as error:
            return queries.QueryResult(error=f"{self.url}: {type(error).__name__}")
        return queries.QueryResult(series=tuple(_series(item) for item in raw))


def _no_retry() -> typing.Any:
    from urllib3.util.retry import Retry

    return Retry(total=0)  # a dead Prometheus must answer "unavailable" within the round


def _series(item: typing.Mapping[str, typing.Any]) -> queries.Series:
    timestamp, value = item["value"]
    return queries.Series(labels=item.get("metric", {}), value=float(value), timestamp=float(timestamp))


def _error_message(text: str) -> str:
    """Prometheus' own `error` field when the body carries one."""
    start = text.find("(b'")
    if start != -1:
        try:
            return json.loads(text[start + 3 : -2].encode().decode("unicode_escape"))["error"][:300]
        except (ValueError, KeyError):
            pass
    return text[:300]
