"""The redactor: every kind replaced, checksums honoured, ordinary numbers left alone, only the kinds asked for."""

from __future__ import annotations

import re

import pytest

from shared.safety.patterns import HEAD_MAX, PATTERNS
from shared.safety.redact import KINDS, StreamRedactor, redact

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFuYSJ9."
       "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gun\n" \
      "-----END RSA PRIVATE KEY-----"
SECRETS = [
    "sk-Tq3ZbW9xKpL2mN7vR4sJ8dF1gH6yC0aE5uI3oP9qW2eR7tY4",
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0hIj3kLm6nOp9qRs2tUv5wXy8z_-Ab",
    "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "Xk2Lp9Qr4Ts7Vw1Yz3Ab5Cd8Ef0Gh2Ij4Kl6Mn8Op1Qr3St5Uv7WJQQJ99ABACYeBjFXJ3w3AAAEACOGk1Zo",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAY34FZKBOKMUTVV7A",
    "ghp_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hI6",
    "gho_16C7e42F292c6912E7710c838347Ae178B4a",
    "ghs_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "xoxp-123456789012-1234567890123-1234567890123-abcdef0123456789abcdef0123456789",
    JWT,
    PEM,
]


@pytest.mark.parametrize("secret", SECRETS)
def test_each_sort_of_secret_is_replaced_whole(secret: str) -> None:
    out, counts = redact(f"Here it is: {secret} - keep it safe.", ["secrets"])
    assert out == "Here it is: [REDACTED:secrets] - keep it safe."
    assert counts == {"secrets": 1}


def test_a_connection_string_keeps_its_names_and_loses_its_secrets() -> None:
    text = ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4+/Zm9vYmFy==;"
            "EndpointSuffix=core.windows.net and Server=db;User ID=app;Password=hunter2!;Encrypt=true")
    out, counts = redact(text, ["secrets"])
    assert out == ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[REDACTED:secrets];"
                   "EndpointSuffix=core.windows.net and Server=db;User ID=app;Password=[REDACTED:secrets];Encrypt=true")
    assert counts == {"secrets": 2}


def test_an_unterminated_private_key_block_is_swallowed_to_the_end() -> None:
    out, _ = redact("key:\n" + PEM.split("-----END", maxsplit=1)[0], ["secrets"])
    assert out == "key:\n[REDACTED:secrets]"


@pytest.mark.parametrize(("kind", "value"), [
    ("email", "ana.lopez+news@contoso.co.uk"),
    ("phone", "+1 415-555-0132"),
    ("phone", "(020) 7946 0958"),
    ("phone", "+442079460958"),
    ("credit_card", "4111 1111 1111 1111"),
    ("credit_card", "5500-0000-0000-0004"),
    ("credit_card", "378282246310005"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "GB29NWBK60161331926819"),
    ("ip", "192.168.10.254"),
    ("ip", "2001:db8:85a3::8a2e:370:7334"),
    ("us_ssn", "123-45-6789"),
])
def test_each_kind_of_pii_is_replaced(kind: str, value: str) -> None:
    out, counts = redact(f"Details: {value}.", [kind])
    assert out == f"Details: [REDACTED:{kind}]."
    assert counts == {kind: 1}


@pytest.mark.parametrize("text", [
    "Card 4111 1111 1111 1112 fails Luhn.",
    "IBAN DE89 3704 0044 0532 0130 01 fails mod 97.",
    "SSN 000-12-3456 and 666-12-3456 were never issued.",
    "sk-learn-compatible-estimator-api is a package name.",
    "Version 3.11.4, build 10.0.19045.3803, released 2024-01-15 (15/01/2024).",
    "Order ORD-2024-558812, invoice #48213907, ticket INC-40213, part 7734-221-09.",
    "The population grew to 12,345,678; 300.1.2.3 is no address; see std::vector and a::b.",
    "Commit 3f2a9c1 and UUID 550e8400-e29b-41d4-a716-446655440000 in the logs.",
])
def test_look_alikes_are_left_alone(text: str) -> None:
    assert redact(text, KINDS) == (text, {})


def test_only_the_kinds_asked_for_are_replaced() -> None:
    text = "Mail ana@example.com the key AKIAIOSFODNN7EXAMPLE"
    assert redact(text, ["secrets"])[0] == "Mail ana@example.com the key [REDACTED:secrets]"
    assert redact(text, ["email"])[0] == "Mail [REDACTED:email] the key AKIAIOSFODNN7EXAMPLE"
    assert redact(text, []) == (text, {})


def test_tool_call_arguments_are_redacted_by_the_same_function() -> None:
    arguments = '{"to": "ana@example.com", "api_key": "ghp_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hI6"}'
    out, counts = redact(arguments, ["secrets", "email"])
    assert out == '{"to": "[REDACTED:email]", "api_key": "[REDACTED:secrets]"}'
    assert counts == {"email": 1, "secrets": 1}


def test_an_unknown_kind_and_a_short_window_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="unknown redaction kinds: person"):
        redact("x", ["secrets", "person"])
    with pytest.raises(ValueError, match="hold must be more than"):
        StreamRedactor(["secrets"], hold=HEAD_MAX)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.name)
def test_every_head_fits_the_window(pattern: object) -> None:
    """The stream's correctness rests on it: a head longer than HEAD_MAX could be cut by the window."""
    width = re._parser.parse(pattern.head).getwidth()[1]  # type: ignore[attr-defined]
    assert width <= HEAD_MAX, f"{pattern.name} head can be {width} characters"  # type: ignore[attr-defined]
