"""The one secret scrubber: credentials never reach a cache key, store, trace, log or report.

Two views of the same rule:
- `strip_secrets(value)` drops the entries of dicts (at any depth) whose name says they carry a
  credential (api_key, aws_secret_access_key, Authorization, ...), keeping numbers (a
  `max_tokens` is a count, not a credential);
- `scrub_text(text)` masks, inside free text such as a provider's error message, the values of
  the environment's secret-like variables (names with KEY, TOKEN, SECRET or PASSWORD) and
  anything shaped like a key (sk-..., Bearer ..., AKIA..., a password in a URL).

Example:
    >>> strip_secrets({"model": "gpt-4o-mini", "api_key": "sk-1", "max_tokens": 64})
    {'model': 'gpt-4o-mini', 'max_tokens': 64}
    >>> scrub_text("Incorrect API key provided: sk-proj-abcdefghijklmnop1234", env={})
    'Incorrect API key provided: ***'
"""

from __future__ import annotations

__all__ = ["is_secret_key", "strip_secrets", "scrub_text", "MASK"]

import os
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
_SECRET_PARTS = ("key", "secret", "token", "password", "authorization", "cookie", "credential")
_ENV_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
# Shorter values (e.g. "1", "true") would mask ordinary words of a message.
_MIN_SECRET_LENGTH = 6
_KEY_SHAPES = re.compile(
    r"(?:\bsk-[A-Za-z0-9_\-]{8,}"  # OpenAI, Anthropic (sk-ant-...), many proxies
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{12,}"  # AWS access key ids
    r"|\bAIza[0-9A-Za-z_\-]{20,}"  # Google API keys
    r"|\b(?:ghp|gho|ghs|github_pat|hf|xox[abp])_[A-Za-z0-9_]{10,})",  # GitHub, Hugging Face, Slack
)
# A password in a URL: "https://user:PASSWORD@host".
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^@\s/]+(?=@)")
# A key after its label: "Bearer KEY", "?key=KEY", "api_key: KEY"; the label stays.
_LABELLED = re.compile(
    r"""((?:\bBearer\s+|[?&](?:key|api_key|token|access_token)=|\bapi[_-]?key["']?\s*[:=]\s*["']?))"""
    r"""(?!\*\*\*)[^\s&"',;]{6,}""",
    re.IGNORECASE,
)


def is_secret_key(name: str) -> bool:
    """True for names that carry credentials: api_key, aws_secret_access_key, token, ...

    Token *counts* (max_tokens, max_completion_tokens) are parameters, not secrets.
    """
    lowered = str(name).lower()
    if lowered.endswith("tokens"):
        return False
    return any(part in lowered for part in _SECRET_PARTS)


def strip_secrets(value: Any) -> Any:
    """A copy of `value` without the dict entries whose name is secret-like, at any depth, and
    with the password of any URL masked (an api_base "http://user:PASS@host/v1").

    Numbers, booleans and None under such a name are kept: they are counts or switches.
    """
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if is_secret_key(k) and not (v is None or isinstance(v, (int, float))):
                continue
            out[k] = strip_secrets(v)
        return out
    if isinstance(value, (list, tuple)):
        return [strip_secrets(v) for v in value]
    if isinstance(value, str) and "@" in value and "://" in value:
        return _URL_PASSWORD.sub(r"\1" + MASK, value)  # "http://user:***@host": an api_base's password
    return value


def _env_secrets(env: Mapping[str, str]) -> list[str]:
    values = {
        value
        for name, value in env.items()
        if any(part in name.upper() for part in _ENV_PARTS) and len(value) >= _MIN_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)  # longest first: a key containing another


def scrub_text(text: str, *, extra: tuple[str, ...] = (), env: Mapping[str, str] | None = None) -> str:
    """`text` with every secret it contains replaced by "***".

    Args:
        text: free text, e.g. an error message that a provider or a library built.
        extra: more secret values to mask (a key that came from elsewhere than the environment).
        env: the environment whose secret-like variables are masked (default os.environ).
    """
    if not text:
        return text
    for secret in (*[s for s in extra if s and len(s) >= _MIN_SECRET_LENGTH], *_env_secrets(os.environ if env is None else env)):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
    return _LABELLED.sub(lambda m: m.group(1) + MASK, _KEY_SHAPES.sub(MASK, text))
